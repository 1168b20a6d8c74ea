/* daemon/engine_state.h: the SNMP engine's state file (snmpEngineID, snmpEngineBoots and
 * the second engineTime counts from) for the snmptrap handler's informs. Every worker's
 * handler state loads it at init: under an flock, the first load of a process raises
 * engineBoots and writes the file again (temp file, fsync, rename); later loads in the same
 * process (other workers, reloads) read the same values. Never on the receive path. */
#ifndef LUADGRAM_ENGINE_STATE_H
#define LUADGRAM_ENGINE_STATE_H

#include <stddef.h>
#include <stdint.h>

struct engine_state {
    uint8_t id[32];
    size_t id_len;
    uint32_t boots;
    int64_t started;     /* CLOCK_REALTIME second of this process's first load */
};

/* Loads path into *st. With have_id, st->id is the configured engine ID (a different one in
 * the file starts engineBoots again at 1); without, the file's, or a new random one
 * (80001f8880 + 8 random octets, Net-SNMP's form). 0, or -1 with a reason in err. */
int engine_state_load(const char *path, int have_id, struct engine_state *st, char *err,
                      size_t errlen);

#endif
