/* daemon/codec/snmp_usm_none.c: snmp_usm.h in a build without SNMPv3 USM (CMake option
 * LUADGRAM_USM OFF: the Windows build, which does not build OpenSSL's libcrypto;
 * cmake/features.cmake). usm_unavailable says why; usm_new always fails with that reason,
 * so that no struct usm ever exists and the functions that take one are never reached
 * (they answer as for an empty USM). The snmptrap handler checks usm_unavailable first
 * (ber.usm_unavailable) and refuses `users` at init; v1/v2c and SNMPv3 without users (counted
 * unsupported) work as in the full build. Owns nothing. */
#include "snmp_usm.h"

#include <stdio.h>
#include <string.h>

#define USM_WHY "SNMPv3 users need a build with OpenSSL (not the Windows build)"

const char *usm_unavailable(void)
{
    return USM_WHY;
}

static const char *const STAT_NAMES[USM_STAT_COUNT] = {
    "usmStatsUnsupportedSecLevels", "usmStatsNotInTimeWindows", "usmStatsUnknownUserNames",
    "usmStatsUnknownEngineIDs", "usmStatsWrongDigests", "usmStatsDecryptionErrors",
};

const char *usm_stat_name(enum usm_stat s)
{
    return (unsigned)s < USM_STAT_COUNT ? STAT_NAMES[s] : "?";
}

int usm_auth_by_name(const char *name) { (void)name; return -1; }
int usm_priv_by_name(const char *name) { (void)name; return -1; }
const char *usm_auth_name(enum usm_auth a) { (void)a; return "?"; }
const char *usm_priv_name(enum usm_priv p) { (void)p; return "?"; }
size_t usm_auth_key_len(enum usm_auth a) { (void)a; return 0; }
size_t usm_priv_key_len(enum usm_priv p) { (void)p; return 0; }

struct usm *usm_new(const struct usm_engine *own, size_t cache_size, char *err, size_t errlen)
{
    (void)own;
    (void)cache_size;
    snprintf(err, errlen, "%s", USM_WHY);
    return NULL;
}

void usm_free(struct usm *u) { (void)u; }

const char *usm_add_user(struct usm *u, const struct usm_user_config *c, char *err,
                         size_t errlen)
{
    (void)u;
    (void)c;
    snprintf(err, errlen, "%s", USM_WHY);
    return err;
}

uint64_t usm_evictions(const struct usm *u) { (void)u; return 0; }
uint32_t usm_stat_count(const struct usm *u, enum usm_stat s) { (void)u; (void)s; return 0; }

enum usm_outcome usm_receive(struct usm *u, const uint8_t *buf, size_t len, struct usm_in *in)
{
    (void)u;
    (void)buf;
    (void)len;
    memset(in, 0, sizeof *in);
    in->why = USM_WHY;
    return USM_UNSUPPORTED;
}

int usm_sign(const struct usm_in *in, uint8_t *buf, size_t len)
{
    (void)in;
    (void)buf;
    (void)len;
    return 0;
}

enum usm_outcome usm_reject(struct usm *u, struct usm_in *in, enum usm_stat s)
{
    (void)u;
    in->stat = s;
    in->report = 0;
    return USM_REJECTED;
}

size_t usm_report_write(struct usm *u, const struct usm_in *in, const uint8_t **out)
{
    (void)u;
    (void)in;
    *out = NULL;
    return 0;
}

size_t usm_response_write(struct usm *u, const struct usm_in *in, const struct snmp_msg *m,
                          const uint8_t **out)
{
    (void)u;
    (void)in;
    (void)m;
    *out = NULL;
    return 0;
}
