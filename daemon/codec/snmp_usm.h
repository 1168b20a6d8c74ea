/* daemon/codec/snmp_usm.h: the User-based Security Model (RFC 3414, RFC 7860 HMAC-SHA-2,
 * RFC 3826 AES, and AES-192/256 as Net-SNMP 5.9 does them) for the SNMPv3 messages the
 * snmptrap handler receives: the v3 header read with the bounded BER reader, users and their
 * keys (password -> key -> localized key, derived once and kept), the digest check,
 * decryption, and the messages luadgramd sends back: Reports and the Response to an inform.
 * Every hash, HMAC and cipher is OpenSSL's libcrypto, from a library context of its own.
 *
 * A struct usm owns its users, its localized-key cache (bounded, per engine ID for users
 * without one), its OpenSSL objects and the scratch buffers the receive path writes into:
 * nothing is allocated per message but on a cache miss. */
#ifndef LUADGRAM_SNMP_USM_H
#define LUADGRAM_SNMP_USM_H

#include <stddef.h>
#include <stdint.h>

#include "snmp_decode.h"

enum usm_auth { USM_AUTH_NONE, USM_AUTH_MD5, USM_AUTH_SHA, USM_AUTH_SHA224, USM_AUTH_SHA256,
                USM_AUTH_SHA384, USM_AUTH_SHA512, USM_AUTH_COUNT };
enum usm_priv { USM_PRIV_NONE, USM_PRIV_DES, USM_PRIV_AES, USM_PRIV_AES192, USM_PRIV_AES256,
                USM_PRIV_COUNT };

/* The usmStats counters (RFC 3414 §5), in the order of their OIDs'
 * 1.3.6.1.6.3.15.1.1.<n> arc minus one. */
enum usm_stat { USM_STAT_UNSUPPORTED_SEC_LEVELS, USM_STAT_NOT_IN_TIME_WINDOWS,
                USM_STAT_UNKNOWN_USER_NAMES, USM_STAT_UNKNOWN_ENGINE_IDS,
                USM_STAT_WRONG_DIGESTS, USM_STAT_DECRYPTION_ERRORS, USM_STAT_COUNT };

#define USM_NAME_MAX 32            /* SnmpAdminString of a user name (RFC 3414 usmUserName) */
#define USM_KEY_MAX 64             /* the longest localized key (SHA-512) */
#define USM_TIME_WINDOW 150        /* seconds (RFC 3414 §3.2.7) */

/* NULL in a build with USM (snmp_usm.c); in one without (snmp_usm_none.c: the Windows
 * build, which has no libcrypto) why not, for the init error of `users` (CMake option
 * LUADGRAM_USM, cmake/features.cmake). Without USM usm_new always fails with that reason. */
const char *usm_unavailable(void);

/* "usmStatsWrongDigests", ... */
const char *usm_stat_name(enum usm_stat s);
/* By their snmptrap(1) names: "MD5", "SHA", "SHA-224", ... / "DES", "AES", "AES-128"
 * (= "AES"), "AES-192", "AES-256"; case-insensitive. -1 when unknown. */
int usm_auth_by_name(const char *name);
int usm_priv_by_name(const char *name);
const char *usm_auth_name(enum usm_auth a);
const char *usm_priv_name(enum usm_priv p);
/* The length of a localized key for the protocol (auth: the hash's output). */
size_t usm_auth_key_len(enum usm_auth a);
size_t usm_priv_key_len(enum usm_priv p);

/* A user as configured. Passwords (at least 8 octets, as Net-SNMP asks) or localized keys
 * (of usm_auth_key_len / usm_priv_key_len octets, for engine_id, or without one for the
 * receiver's own engine ID). */
struct usm_user_config {
    const char *name;
    size_t name_len;
    enum usm_auth auth;
    enum usm_priv priv;
    const uint8_t *auth_pass, *auth_key, *priv_pass, *priv_key;
    size_t auth_pass_len, auth_key_len, priv_pass_len, priv_key_len;
    const uint8_t *engine_id;      /* NULL: any engine (traps), and ours (informs) */
    size_t engine_id_len;
    int min_level;                 /* the lowest level accepted (SNMP_NOAUTHNOPRIV ...) */
};

/* The receiver's own engine (authoritative for informs). */
struct usm_engine {
    uint8_t id[SNMP_ENGINE_ID_MAX];
    size_t id_len;
    uint32_t boots;
    int64_t started;               /* CLOCK_REALTIME second engineTime counts from */
};

struct usm;

/* A new USM for own (copied), with a cache of cache_size localized keys. NULL with a
 * reason in err[errlen] on failure. */
struct usm *usm_new(const struct usm_engine *own, size_t cache_size, char *err, size_t errlen);
void usm_free(struct usm *u);
/* Adds a user (keys derived now). NULL, or a reason in err. */
const char *usm_add_user(struct usm *u, const struct usm_user_config *c, char *err,
                         size_t errlen);
/* Cache evictions so far, and the per-stat counts (the values Reports carry). */
uint64_t usm_evictions(const struct usm *u);
uint32_t usm_stat_count(const struct usm *u, enum usm_stat s);

/* The outcome of usm_receive. */
enum usm_outcome {
    USM_ACCEPTED,      /* in->scoped holds the plaintext ScopedPDU; in->v3 is filled */
    USM_MALFORMED,     /* not a well-formed SNMPv3 message: in->why */
    USM_UNSUPPORTED,   /* another security model: in->why */
    USM_REJECTED,      /* dropped by USM: in->stat, in->why; a Report is due when
                        * in->report is set (usm_report_write) */
};

/* One received message, as usm_receive leaves it (pointers into the packet or into the
 * usm's decryption buffer, valid until the next usm_receive). */
struct usm_in {
    const char *why;
    enum usm_stat stat;
    int report;                    /* reportable, and a Report is due */
    int authoritative;             /* we are (reportable flag: an inform, a probe) */
    int32_t msg_id, max_size, boots, time;
    struct snmp_v3 v3;
    const uint8_t *scoped;         /* the plaintext ScopedPDU (NULL when not reached) */
    size_t scoped_len;
    const void *keys;              /* the localized keys used (internal) */
    const uint8_t *auth_params;    /* msgAuthenticationParameters' content in the packet */
    size_t auth_params_len;
};

/* Checks an SNMPv3 message (RFC 3414 §3.2) and decrypts its ScopedPDU. A message with the
 * reportable flag (an inform, a discovery probe) is for our engine (we are authoritative,
 * the time window is checked); one without (a trap) is the sender's (no time check). */
enum usm_outcome usm_receive(struct usm *u, const uint8_t *buf, size_t len, struct usm_in *in);

/* Writes the digest of buf[0 .. len) (the message usm_receive just read into in, which
 * found its user's keys: in->keys set) into its msgAuthenticationParameters, in place: a
 * message signed with the keys the receiver holds (the fuzz target's changed messages).
 * 1 on success, 0 when in has no keys or auth parameters of the digest's length. */
int usm_sign(const struct usm_in *in, uint8_t *buf, size_t len);

/* Rejects in after all, counted under s (USM_REJECTED): for a decrypted ScopedPDU that does
 * not decode (decryption garbage: usmStatsDecryptionErrors). */
enum usm_outcome usm_reject(struct usm *u, struct usm_in *in, enum usm_stat s);

/* The Report for a rejected message in (in->report set): written into the usm's output
 * buffer; *out points at it; returns its length (0: none can be made). noAuthNoPriv, but
 * authNoPriv for usmStatsNotInTimeWindows (RFC 3414 §3.2.7 a). */
size_t usm_report_write(struct usm *u, const struct usm_in *in, const uint8_t **out);

/* The Response-PDU acknowledging the inform m (snmp_decode_scoped over in->scoped, every
 * binding checked) at the request's level, from our engine; into the usm's output buffer.
 * Returns the length (0 on a crypto failure). */
size_t usm_response_write(struct usm *u, const struct usm_in *in, const struct snmp_msg *m,
                          const uint8_t **out);

#endif
