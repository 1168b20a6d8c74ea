/* daemon/engine_state_none.c: engine_state.h in a build without SNMPv3 USM (CMake option
 * LUADGRAM_USM OFF: the Windows build; cmake/features.cmake), where no engine needs a
 * state file (and engine_state.c's flock and /proc do not exist): loading one fails with
 * the reason usm_unavailable gives. Owns nothing. */
#include "engine_state.h"

#include <stdio.h>
#include <string.h>

#include "snmp_usm.h"

int engine_state_load(const char *path, int have_id, struct engine_state *st, char *err,
                      size_t errlen)
{
    (void)path;
    (void)have_id;
    memset(st, 0, sizeof *st);
    snprintf(err, errlen, "%s", usm_unavailable());
    return -1;
}
