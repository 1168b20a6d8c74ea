/* daemon/codec/snmp_usm.c: the User-based Security Model of snmp_usm.h over OpenSSL's
 * libcrypto (its own OSSL_LIB_CTX with the "default" and, for DES, the "legacy" provider).
 * Owns: the users, the localized-key cache (each entry owns its HMAC and cipher contexts,
 * keyed once), the fetched algorithms, and two scratch buffers (the decrypted ScopedPDU, the
 * message being sent). The reading side fails through one label per function. */
#include "snmp_usm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#define USM_BUF_MAX 65536          /* the largest UDP payload, rounded up */
#define USM_SALT_LEN 8
#define USM_CACHE_WAYS 4

/* ---- protocols ---- */

static const struct {
    const char *name, *digest;
    size_t key_len, mac_len;       /* the hash's output; the truncated MAC (RFC 7860) */
} AUTH[USM_AUTH_COUNT] = {
    [USM_AUTH_NONE] = {"none", NULL, 0, 0},
    [USM_AUTH_MD5] = {"MD5", "MD5", 16, 12},
    [USM_AUTH_SHA] = {"SHA", "SHA1", 20, 12},
    [USM_AUTH_SHA224] = {"SHA-224", "SHA2-224", 28, 16},
    [USM_AUTH_SHA256] = {"SHA-256", "SHA2-256", 32, 24},
    [USM_AUTH_SHA384] = {"SHA-384", "SHA2-384", 48, 32},
    [USM_AUTH_SHA512] = {"SHA-512", "SHA2-512", 64, 48},
};

static const struct {
    const char *name, *cipher;
    size_t key_len;                /* the localized key's octets the protocol uses */
} PRIV[USM_PRIV_COUNT] = {
    [USM_PRIV_NONE] = {"none", NULL, 0},
    [USM_PRIV_DES] = {"DES", "DES-CBC", 16},        /* key 8 + pre-IV 8 (RFC 3414 §8.1.1.1) */
    [USM_PRIV_AES] = {"AES", "AES-128-CFB", 16},
    [USM_PRIV_AES192] = {"AES-192", "AES-192-CFB", 24},
    [USM_PRIV_AES256] = {"AES-256", "AES-256-CFB", 32},
};

static const char *const STAT_NAMES[USM_STAT_COUNT] = {
    "usmStatsUnsupportedSecLevels", "usmStatsNotInTimeWindows", "usmStatsUnknownUserNames",
    "usmStatsUnknownEngineIDs", "usmStatsWrongDigests", "usmStatsDecryptionErrors",
};

const char *usm_unavailable(void)
{
    return NULL;
}

const char *usm_stat_name(enum usm_stat s)
{
    return (unsigned)s < USM_STAT_COUNT ? STAT_NAMES[s] : "?";
}

int usm_auth_by_name(const char *name)
{
    for (int i = 1; i < USM_AUTH_COUNT; i++)
        if (strcasecmp(name, AUTH[i].name) == 0)
            return i;
    return -1;
}

int usm_priv_by_name(const char *name)
{
    if (strcasecmp(name, "AES-128") == 0 || strcasecmp(name, "AES128") == 0)
        return USM_PRIV_AES;
    for (int i = 1; i < USM_PRIV_COUNT; i++)
        if (strcasecmp(name, PRIV[i].name) == 0)
            return i;
    return -1;
}

const char *usm_auth_name(enum usm_auth a) { return AUTH[a].name; }
const char *usm_priv_name(enum usm_priv p) { return PRIV[p].name; }
size_t usm_auth_key_len(enum usm_auth a) { return AUTH[a].key_len; }
size_t usm_priv_key_len(enum usm_priv p) { return PRIV[p].key_len; }

/* ---- the objects ---- */

/* A user's keys localized to one engine, keyed into their OpenSSL contexts once. */
struct usm_keys {
    const struct usm_user *user;
    uint8_t engine[SNMP_ENGINE_ID_MAX];
    size_t engine_len;
    uint64_t used;                 /* the cache's clock at the last use; 0 = empty slot */
    uint8_t auth[USM_KEY_MAX], priv[USM_KEY_MAX];
    EVP_MAC_CTX *mac;              /* HMAC keyed with auth */
    EVP_CIPHER_CTX *dec, *enc;     /* keyed with priv (the IV set per message) */
};

struct usm_user {
    uint8_t name[USM_NAME_MAX];
    size_t name_len;
    enum usm_auth auth;
    enum usm_priv priv;
    int level;                     /* the highest level its keys allow */
    int min_level;
    uint8_t engine[SNMP_ENGINE_ID_MAX];
    size_t engine_len;             /* 0: any engine */
    int from_passwords;            /* ku_* hold the password keys (RFC 3414 A.2) */
    uint8_t ku_auth[USM_KEY_MAX], ku_priv[USM_KEY_MAX];
    struct usm_keys fixed;         /* localized to engine (or, without one, to ours) */
    int has_fixed;
};

struct usm {
    OSSL_LIB_CTX *lib;
    OSSL_PROVIDER *prov_default, *prov_legacy;
    EVP_MAC *hmac;
    EVP_MD *md[USM_AUTH_COUNT];
    EVP_CIPHER *cipher[USM_PRIV_COUNT];
    struct usm_engine own;
    struct usm_user *users;
    size_t nusers, users_cap;
    struct usm_keys *cache;        /* nsets * USM_CACHE_WAYS entries */
    size_t nsets;
    uint64_t clock, evictions;
    uint32_t stats[USM_STAT_COUNT];
    uint64_t salt;                 /* the next salt (RFC 3826 §3.1.2.1, RFC 3414 §8.1.1.1) */
    uint8_t plain[USM_BUF_MAX];    /* the decrypted ScopedPDU */
    uint8_t out[USM_BUF_MAX];      /* the message being sent */
    uint8_t work[USM_BUF_MAX];     /* its ScopedPDU before encryption */
};

uint64_t usm_evictions(const struct usm *u) { return u->evictions; }
uint32_t usm_stat_count(const struct usm *u, enum usm_stat s) { return u->stats[s]; }

static void keys_release(struct usm_keys *k)
{
    EVP_MAC_CTX_free(k->mac);
    EVP_CIPHER_CTX_free(k->dec);
    EVP_CIPHER_CTX_free(k->enc);
    k->mac = NULL;
    k->dec = k->enc = NULL;
    k->used = 0;
}

struct usm *usm_new(const struct usm_engine *own, size_t cache_size, char *err, size_t errlen)
{
    struct usm *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->own = *own;
    u->nsets = cache_size / USM_CACHE_WAYS + 1;
    u->cache = calloc(u->nsets * USM_CACHE_WAYS, sizeof *u->cache);
    u->lib = OSSL_LIB_CTX_new();
    if (!u->cache || !u->lib)
        goto fail;
    u->prov_default = OSSL_PROVIDER_load(u->lib, "default");
    u->prov_legacy = OSSL_PROVIDER_load(u->lib, "legacy");  /* DES; may be absent */
    u->hmac = EVP_MAC_fetch(u->lib, "HMAC", NULL);
    if (!u->prov_default || !u->hmac)
        goto fail;
    for (int a = 1; a < USM_AUTH_COUNT; a++)
        if (!(u->md[a] = EVP_MD_fetch(u->lib, AUTH[a].digest, NULL)))
            goto fail;
    for (int p = USM_PRIV_AES; p < USM_PRIV_COUNT; p++)
        if (!(u->cipher[p] = EVP_CIPHER_fetch(u->lib, PRIV[p].cipher, NULL)))
            goto fail;
    if (u->prov_legacy)
        u->cipher[USM_PRIV_DES] = EVP_CIPHER_fetch(u->lib, PRIV[USM_PRIV_DES].cipher, NULL);
    /* getrandom, not RAND_bytes_ex: a DRBG in a library context of our own registers a
     * thread-exit handler that OpenSSL 3.0 still runs after OSSL_LIB_CTX_free (a crash in
     * OPENSSL_cleanup at exit) */
    if (getrandom(&u->salt, sizeof u->salt, 0) != (ssize_t)sizeof u->salt)
        goto fail;
    return u;

fail:
    snprintf(err, errlen, "OpenSSL's libcrypto cannot give the USM algorithms");
    usm_free(u);
    return NULL;
}

void usm_free(struct usm *u)
{
    if (!u)
        return;
    for (size_t i = 0; u->cache && i < u->nsets * USM_CACHE_WAYS; i++)
        keys_release(&u->cache[i]);
    for (size_t i = 0; i < u->nusers; i++)
        keys_release(&u->users[i].fixed);
    free(u->users);
    free(u->cache);
    for (int a = 0; a < USM_AUTH_COUNT; a++)
        EVP_MD_free(u->md[a]);
    for (int p = 0; p < USM_PRIV_COUNT; p++)
        EVP_CIPHER_free(u->cipher[p]);
    EVP_MAC_free(u->hmac);
    if (u->prov_legacy)
        OSSL_PROVIDER_unload(u->prov_legacy);
    if (u->prov_default)
        OSSL_PROVIDER_unload(u->prov_default);
    OSSL_LIB_CTX_free(u->lib);
    free(u);
}

/* ---- keys (RFC 3414 A.2, RFC 7860 §9.1, draft-blumenthal-aes-usm-04 §3.1.2.1) ---- */

/* Ku: the hash of 1 MiB of the password repeated. out gets the hash's length. */
static int password_to_key(const struct usm *u, enum usm_auth a, const uint8_t *pass,
                           size_t len, uint8_t *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t block[64];
    size_t at = 0;
    int ok = ctx && EVP_DigestInit_ex2(ctx, u->md[a], NULL);
    for (size_t done = 0; ok && done < 1048576; done += sizeof block) {
        for (size_t i = 0; i < sizeof block; i++) {
            block[i] = pass[at++];
            if (at == len)
                at = 0;
        }
        ok = EVP_DigestUpdate(ctx, block, sizeof block);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* Kul = H(Ku || engineID || Ku). */
static int localize(const struct usm *u, enum usm_auth a, const uint8_t *ku,
                    const uint8_t *engine, size_t engine_len, uint8_t *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = AUTH[a].key_len;
    int ok = ctx && EVP_DigestInit_ex2(ctx, u->md[a], NULL) &&
             EVP_DigestUpdate(ctx, ku, n) && EVP_DigestUpdate(ctx, engine, engine_len) &&
             EVP_DigestUpdate(ctx, ku, n) && EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* Net-SNMP's "AES-192" and "AES-256" (its usm_AES192PrivProtocol / usm_AES256PrivProtocol,
 * without the Reeder flag "-C" names carry): a localized key shorter than the cipher's is
 * extended as draft-blumenthal-aes-usm-04 §3.1.2.1 says, Kul = Kul || H(Kul) until long
 * enough. */
static int extend_key(const struct usm *u, enum usm_auth a, enum usm_priv p, uint8_t *kul)
{
    size_t have = AUTH[a].key_len, need = PRIV[p].key_len;
    while (have < need) {
        uint8_t h[EVP_MAX_MD_SIZE];
        if (!EVP_Digest(kul, have, h, NULL, u->md[a], NULL))
            return 0;
        size_t take = need - have < AUTH[a].key_len ? need - have : AUTH[a].key_len;
        memcpy(kul + have, h, take);
        have += take;
    }
    return 1;
}

/* Keys the contexts of k from k->auth and k->priv. */
static int keys_setup(struct usm *u, struct usm_keys *k)
{
    const struct usm_user *user = k->user;
    if (user->auth == USM_AUTH_NONE)
        return 1;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)AUTH[user->auth].digest, 0),
        OSSL_PARAM_construct_end(),
    };
    k->mac = EVP_MAC_CTX_new(u->hmac);
    if (!k->mac || !EVP_MAC_init(k->mac, k->auth, AUTH[user->auth].key_len, params))
        return 0;
    if (user->priv == USM_PRIV_NONE)
        return 1;
    const EVP_CIPHER *c = u->cipher[user->priv];
    k->dec = EVP_CIPHER_CTX_new();
    k->enc = EVP_CIPHER_CTX_new();
    return k->dec && k->enc && EVP_DecryptInit_ex2(k->dec, c, k->priv, NULL, NULL) &&
           EVP_EncryptInit_ex2(k->enc, c, k->priv, NULL, NULL) &&
           EVP_CIPHER_CTX_set_padding(k->dec, 0) && EVP_CIPHER_CTX_set_padding(k->enc, 0);
}

/* Fills k (user set) with the user's keys localized to engine, and keys its contexts. */
static int keys_localize(struct usm *u, struct usm_keys *k, const uint8_t *engine,
                         size_t engine_len)
{
    const struct usm_user *user = k->user;
    memcpy(k->engine, engine, engine_len);
    k->engine_len = engine_len;
    if (user->auth != USM_AUTH_NONE &&
        !localize(u, user->auth, user->ku_auth, engine, engine_len, k->auth))
        return 0;
    if (user->priv != USM_PRIV_NONE &&
        (!localize(u, user->auth, user->ku_priv, engine, engine_len, k->priv) ||
         !extend_key(u, user->auth, user->priv, k->priv)))
        return 0;
    return keys_setup(u, k);
}

const char *usm_add_user(struct usm *u, const struct usm_user_config *c, char *err,
                         size_t errlen)
{
    if (c->name_len == 0 || c->name_len > USM_NAME_MAX)
        return snprintf(err, errlen, "a user name has 1 to %d octets", USM_NAME_MAX), err;
    if (c->engine_id && (c->engine_id_len < 5 || c->engine_id_len > SNMP_ENGINE_ID_MAX))
        return snprintf(err, errlen, "engine_id has 5 to 32 octets (RFC 3411), not %zu",
                        c->engine_id_len), err;
    if (c->priv != USM_PRIV_NONE && c->auth == USM_AUTH_NONE)
        return snprintf(err, errlen, "priv needs auth (there is no noAuthPriv level)"), err;
    if (c->priv == USM_PRIV_DES && !u->cipher[USM_PRIV_DES])
        return snprintf(err, errlen, "DES needs OpenSSL's legacy provider (legacy.so in "
                        "OpenSSL's modules folder, Debian's libssl3), which could not be "
                        "loaded"), err;
    for (size_t i = 0; i < u->nusers; i++) {
        const struct usm_user *o = &u->users[i];
        if (o->name_len == c->name_len && memcmp(o->name, c->name, c->name_len) == 0 &&
            o->engine_len == (c->engine_id ? c->engine_id_len : 0) &&
            memcmp(o->engine, c->engine_id ? c->engine_id : o->engine, o->engine_len) == 0)
            return snprintf(err, errlen, "user %.*s is configured twice for the same engine",
                            (int)c->name_len, c->name), err;
    }
    int by_pass = c->auth != USM_AUTH_NONE && c->auth_pass;
    if (c->auth != USM_AUTH_NONE && !by_pass && c->auth_key_len != AUTH[c->auth].key_len)
        return snprintf(err, errlen, "auth_key of %s has %zu octets, not %zu",
                        AUTH[c->auth].name, c->auth_key_len, AUTH[c->auth].key_len), err;
    if (c->priv != USM_PRIV_NONE && by_pass != (c->priv_pass != NULL))
        return snprintf(err, errlen, "give auth_pass with priv_pass, or auth_key with "
                        "priv_key"), err;
    if (c->priv != USM_PRIV_NONE && !by_pass && c->priv_key_len != PRIV[c->priv].key_len)
        return snprintf(err, errlen, "priv_key of %s has %zu octets, not %zu",
                        PRIV[c->priv].name, c->priv_key_len, PRIV[c->priv].key_len), err;
    if ((by_pass && c->auth_pass_len < 8) || (c->priv_pass && c->priv_pass_len < 8))
        return snprintf(err, errlen, "a password has at least 8 characters (as Net-SNMP "
                        "asks)"), err;
    if (u->nusers == u->users_cap) {
        size_t cap = u->users_cap ? 2 * u->users_cap : 4;
        struct usm_user *grown = realloc(u->users, cap * sizeof *grown);
        if (!grown)
            return snprintf(err, errlen, "out of memory"), err;
        u->users = grown;
        u->users_cap = cap;
        /* the fixed keys point at their user: set again below for all */
        for (size_t i = 0; i < u->nusers; i++)
            u->users[i].fixed.user = &u->users[i];
    }
    struct usm_user *user = &u->users[u->nusers];
    memset(user, 0, sizeof *user);
    memcpy(user->name, c->name, c->name_len);
    user->name_len = c->name_len;
    user->auth = c->auth;
    user->priv = c->priv;
    user->level = c->priv ? SNMP_AUTHPRIV : c->auth ? SNMP_AUTHNOPRIV : SNMP_NOAUTHNOPRIV;
    user->min_level = c->min_level < 0 ? user->level : c->min_level;
    if (user->min_level > user->level)
        return snprintf(err, errlen, "level %s is above what the user's keys allow (%s)",
                        snmp_level_name(user->min_level), snmp_level_name(user->level)), err;
    if (c->engine_id) {
        memcpy(user->engine, c->engine_id, c->engine_id_len);
        user->engine_len = c->engine_id_len;
    }
    user->fixed.user = user;
    user->from_passwords = by_pass;
    const uint8_t *fixed_engine = c->engine_id ? c->engine_id : u->own.id;
    size_t fixed_len = c->engine_id ? c->engine_id_len : u->own.id_len;
    int ok = 1;
    if (by_pass) {
        ok = password_to_key(u, c->auth, c->auth_pass, c->auth_pass_len, user->ku_auth) &&
             (c->priv == USM_PRIV_NONE ||
              password_to_key(u, c->auth, c->priv_pass, c->priv_pass_len, user->ku_priv)) &&
             keys_localize(u, &user->fixed, fixed_engine, fixed_len);
    } else {
        memcpy(user->fixed.engine, fixed_engine, fixed_len);
        user->fixed.engine_len = fixed_len;
        if (c->auth != USM_AUTH_NONE)
            memcpy(user->fixed.auth, c->auth_key, c->auth_key_len);
        if (c->priv != USM_PRIV_NONE)
            memcpy(user->fixed.priv, c->priv_key, c->priv_key_len);
        ok = keys_setup(u, &user->fixed);
    }
    user->fixed.used = 1;
    u->nusers++;
    if (!ok) {
        keys_release(&user->fixed);
        u->nusers--;
        return snprintf(err, errlen, "OpenSSL could not derive or set the keys of user "
                        "%.*s", (int)c->name_len, c->name), err;
    }
    return NULL;
}

/* The keys of a user without an engine ID, localized to engine: from the cache (a set of
 * USM_CACHE_WAYS entries chosen by a hash of both), or made now in its least recently used
 * entry (an eviction when it held other keys). NULL when OpenSSL fails. */
static struct usm_keys *cached_keys(struct usm *u, const struct usm_user *user,
                                    const uint8_t *engine, size_t engine_len)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)user;
    for (size_t i = 0; i < engine_len; i++)
        h = (h ^ engine[i]) * 1099511628211ull;
    struct usm_keys *set = &u->cache[(h >> 7) % u->nsets * USM_CACHE_WAYS], *victim = set;
    u->clock++;
    for (int w = 0; w < USM_CACHE_WAYS; w++) {
        struct usm_keys *k = &set[w];
        if (k->used && k->user == user && k->engine_len == engine_len &&
            memcmp(k->engine, engine, engine_len) == 0) {
            k->used = u->clock;
            return k;
        }
        if (k->used < victim->used)
            victim = k;
    }
    if (victim->used)
        u->evictions++;
    keys_release(victim);
    victim->user = user;
    if (!keys_localize(u, victim, engine, engine_len)) {
        keys_release(victim);
        return NULL;
    }
    victim->used = u->clock;
    return victim;
}

/* ---- receiving (RFC 3414 §3.2) ---- */

/* The MAC of buf[0 .. len) with its authParams (at auth, mac_len octets) taken as zeros. */
static int mac_of(struct usm_keys *k, const uint8_t *buf, size_t len, const uint8_t *auth,
                  size_t mac_len, uint8_t *out)
{
    static const uint8_t zeros[48];
    size_t before = (size_t)(auth - buf), outlen;
    uint8_t full[EVP_MAX_MD_SIZE];
    int ok = EVP_MAC_init(k->mac, NULL, 0, NULL) && EVP_MAC_update(k->mac, buf, before) &&
             EVP_MAC_update(k->mac, zeros, mac_len) &&
             EVP_MAC_update(k->mac, auth + mac_len, len - before - mac_len) &&
             EVP_MAC_final(k->mac, full, &outlen, sizeof full);
    if (ok)
        memcpy(out, full, mac_len);
    return ok;
}

/* The IV of a message: DES: pre-IV XOR salt; AES: boots, time, salt (RFC 3826 §3.1.2.1). */
static void make_iv(const struct usm_keys *k, const uint8_t *salt, uint32_t boots,
                    uint32_t time, uint8_t *iv)
{
    if (k->user->priv == USM_PRIV_DES) {
        for (int i = 0; i < 8; i++)
            iv[i] = k->priv[8 + i] ^ salt[i];
        return;
    }
    for (int i = 0; i < 4; i++) {
        iv[i] = (uint8_t)(boots >> (24 - 8 * i));
        iv[4 + i] = (uint8_t)(time >> (24 - 8 * i));
    }
    memcpy(iv + 8, salt, USM_SALT_LEN);
}

/* Decrypts n octets into u->plain with k and the message's salt; 0 on failure. */
static int decrypt(struct usm *u, struct usm_keys *k, const uint8_t *salt, int32_t boots,
                   int32_t time, const uint8_t *in, size_t n)
{
    uint8_t iv[16];
    int outl = 0, fin = 0;
    if (n > sizeof u->plain || (k->user->priv == USM_PRIV_DES && n % 8))
        return 0;
    make_iv(k, salt, (uint32_t)boots, (uint32_t)time, iv);
    return EVP_DecryptInit_ex2(k->dec, NULL, NULL, iv, NULL) &&
           EVP_DecryptUpdate(k->dec, u->plain, &outl, in, (int)n) &&
           EVP_DecryptFinal_ex(k->dec, u->plain + outl, &fin) && (size_t)(outl + fin) == n;
}

/* Our engineTime: seconds since the engine's start. */
static int32_t engine_time(const struct usm *u)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_sec - u->own.started;
    return t < 0 ? 0 : t > INT32_MAX ? INT32_MAX : (int32_t)t;
}

static const char *read_int(struct ber_cur *c, int32_t *out, const char *mismatch)
{
    struct ber_tlv t;
    const char *why = ber_expect(c, BER_INTEGER, &t, mismatch);
    if (!why)
        why = ber_int32(&t, out);
    if (!why && *out < 0)
        why = "negative INTEGER in the SNMPv3 header";
    return why;
}

/* The user called name for engine: the one with that engine ID, else the one without. */
static struct usm_user *find_user(struct usm *u, const uint8_t *name,
                                        size_t name_len, const uint8_t *engine,
                                        size_t engine_len, int *named)
{
    struct usm_user *any = NULL;
    *named = 0;
    for (size_t i = 0; i < u->nusers; i++) {
        struct usm_user *user = &u->users[i];
        if (user->name_len != name_len || memcmp(user->name, name, name_len) != 0)
            continue;
        *named = 1;
        if (user->engine_len == 0)
            any = user;
        else if (user->engine_len == engine_len &&
                 memcmp(user->engine, engine, engine_len) == 0)
            return user;
    }
    return any;
}

enum usm_outcome usm_reject(struct usm *u, struct usm_in *in, enum usm_stat s)
{
    u->stats[s]++;
    in->stat = s;
    in->why = STAT_NAMES[s];
    return USM_REJECTED;
}

enum usm_outcome usm_receive(struct usm *u, const uint8_t *buf, size_t len, struct usm_in *in)
{
    struct ber_cur top, mc, hc, sc, spc;
    struct ber_tlv t, flags, model_tlv, engine, user_tlv, auth, priv, data;
    const char *why;
    int32_t version, model;

    memset(in, 0, sizeof *in);
    ber_init(&top, buf, len);
    if ((why = ber_expect(&top, BER_SEQUENCE, &t, "expected SEQUENCE message")))
        goto malformed;
    if (ber_left(&top)) {
        why = "trailing bytes after message";
        goto malformed;
    }
    if ((why = ber_enter(&top, &t, &mc)) ||
        (why = read_int(&mc, &version, "expected INTEGER version")))
        goto malformed;
    if (version != 3) {
        why = "not an SNMPv3 message";
        goto malformed;
    }
    /* HeaderData (RFC 3412 §6) */
    if ((why = ber_expect(&mc, BER_SEQUENCE, &t, "expected SEQUENCE msgGlobalData")) ||
        (why = ber_enter(&mc, &t, &hc)) ||
        (why = read_int(&hc, &in->msg_id, "expected INTEGER msgID")) ||
        (why = read_int(&hc, &in->max_size, "expected INTEGER msgMaxSize")) ||
        (why = ber_expect(&hc, BER_OCTET_STRING, &flags, "expected OCTET STRING msgFlags")) ||
        (why = ber_expect(&hc, BER_INTEGER, &model_tlv, "expected INTEGER msgSecurityModel")) ||
        (why = ber_int32(&model_tlv, &model)))
        goto malformed;
    if (ber_left(&hc)) {
        why = "trailing bytes in msgGlobalData";
        goto malformed;
    }
    if (flags.len != 1 || (flags.val[0] & 3) == 2) {
        why = "invalid msgFlags";
        goto malformed;
    }
    if (in->max_size < 484) {
        why = "msgMaxSize below 484";
        goto malformed;
    }
    if (model != 3) {
        in->why = "only the User-based Security Model (3) is supported";
        return USM_UNSUPPORTED;
    }
    in->v3.level = flags.val[0] & 3;
    in->authoritative = (flags.val[0] & 4) != 0;
    /* UsmSecurityParameters (RFC 3414 §2.4) */
    if ((why = ber_expect(&mc, BER_OCTET_STRING, &t,
                          "expected OCTET STRING msgSecurityParameters")) ||
        (why = ber_enter(&mc, &t, &sc)) ||
        (why = ber_expect(&sc, BER_SEQUENCE, &t, "expected SEQUENCE UsmSecurityParameters")) ||
        (why = ber_enter(&sc, &t, &spc)) ||
        (why = ber_expect(&spc, BER_OCTET_STRING, &engine,
                          "expected OCTET STRING msgAuthoritativeEngineID")) ||
        (why = read_int(&spc, &in->boots, "expected INTEGER msgAuthoritativeEngineBoots")) ||
        (why = read_int(&spc, &in->time, "expected INTEGER msgAuthoritativeEngineTime")) ||
        (why = ber_expect(&spc, BER_OCTET_STRING, &user_tlv,
                          "expected OCTET STRING msgUserName")) ||
        (why = ber_expect(&spc, BER_OCTET_STRING, &auth,
                          "expected OCTET STRING msgAuthenticationParameters")) ||
        (why = ber_expect(&spc, BER_OCTET_STRING, &priv,
                          "expected OCTET STRING msgPrivacyParameters")))
        goto malformed;
    if (ber_left(&spc) || ber_left(&sc)) {
        why = "trailing bytes in msgSecurityParameters";
        goto malformed;
    }
    if (engine.len > SNMP_ENGINE_ID_MAX || user_tlv.len > USM_NAME_MAX) {
        why = "engine ID or user name too long";
        goto malformed;
    }
    /* msgData: plaintext ScopedPDU or encryptedPDU */
    if ((why = ber_read(&mc, &data)))
        goto malformed;
    if (ber_left(&mc)) {
        why = "trailing bytes in message";
        goto malformed;
    }
    if (data.tag != ((in->v3.level & 2) ? BER_OCTET_STRING : BER_SEQUENCE)) {
        why = (in->v3.level & 2) ? "expected OCTET STRING encryptedPDU"
                                 : "expected SEQUENCE ScopedPDU";
        goto malformed;
    }
    in->v3.engine_id = engine.val;
    in->v3.engine_id_len = engine.len;
    in->v3.user = user_tlv.val;
    in->v3.user_len = user_tlv.len;
    if (!(in->v3.level & 2)) {
        in->scoped = data.start;
        in->scoped_len = (size_t)(data.val + data.len - data.start);
    }

    /* §3.2 step 3: the engine. A reportable message is for us; another is the sender's. */
    in->report = in->authoritative;
    if (in->authoritative && (engine.len != u->own.id_len ||
                              memcmp(engine.val, u->own.id, engine.len) != 0))
        return usm_reject(u, in, USM_STAT_UNKNOWN_ENGINE_IDS);
    if (!in->authoritative && engine.len < 5)
        return usm_reject(u, in, USM_STAT_UNKNOWN_ENGINE_IDS);
    /* step 4: the user */
    int named;
    struct usm_user *user = find_user(u, user_tlv.val, user_tlv.len, engine.val,
                                            engine.len, &named);
    if (!user)
        return usm_reject(u, in, named ? USM_STAT_UNKNOWN_ENGINE_IDS : USM_STAT_UNKNOWN_USER_NAMES);
    /* step 5: the level */
    if (in->v3.level > user->level || in->v3.level < user->min_level)
        return usm_reject(u, in, USM_STAT_UNSUPPORTED_SEC_LEVELS);
    struct usm_keys *k = &user->fixed;
    if (user->engine_len == 0 && !in->authoritative && in->v3.level != SNMP_NOAUTHNOPRIV) {
        if (!user->from_passwords)      /* keys localized to our engine: not the sender's */
            return usm_reject(u, in, USM_STAT_UNKNOWN_ENGINE_IDS);
        if (!(k = cached_keys(u, user, engine.val, engine.len)))
            return usm_reject(u, in, USM_STAT_WRONG_DIGESTS);
    }
    in->keys = k;
    in->auth_params = auth.val;
    in->auth_params_len = auth.len;
    if (in->v3.level == SNMP_NOAUTHNOPRIV)
        return USM_ACCEPTED;
    /* step 6: the digest */
    size_t mac_len = AUTH[user->auth].mac_len;
    uint8_t mac[EVP_MAX_MD_SIZE];
    if (auth.len != mac_len || !mac_of(k, buf, len, auth.val, mac_len, mac) ||
        CRYPTO_memcmp(mac, auth.val, mac_len) != 0)
        return usm_reject(u, in, USM_STAT_WRONG_DIGESTS);
    /* step 7: the time window (we are authoritative); the Report still wants the request's
     * PDU, so the decryption goes on before rejecting */
    int late = 0;
    if (in->authoritative) {
        int32_t now = engine_time(u);
        int64_t diff = (int64_t)in->time - now;
        late = in->boots == INT32_MAX || (uint32_t)in->boots != u->own.boots ||
               diff > USM_TIME_WINDOW || diff < -USM_TIME_WINDOW;
    }
    /* step 8: decryption */
    if (in->v3.level & 2) {
        struct ber_cur pc;
        if (priv.len != USM_SALT_LEN ||
            !decrypt(u, k, priv.val, in->boots, in->time, data.val, data.len))
            return usm_reject(u, in, late ? USM_STAT_NOT_IN_TIME_WINDOWS
                                      : USM_STAT_DECRYPTION_ERRORS);
        /* garbage: not even a SEQUENCE that fits */
        ber_init(&pc, u->plain, data.len);
        if (ber_expect(&pc, BER_SEQUENCE, &t, "x"))
            return usm_reject(u, in, late ? USM_STAT_NOT_IN_TIME_WINDOWS
                                      : USM_STAT_DECRYPTION_ERRORS);
        in->scoped = u->plain;
        in->scoped_len = (size_t)(t.val + t.len - u->plain);
    }
    if (late)
        return usm_reject(u, in, USM_STAT_NOT_IN_TIME_WINDOWS);
    return USM_ACCEPTED;

malformed:
    in->why = why;
    return USM_MALFORMED;
}

/* ---- sending ---- */

/* Writes tag, length; returns the end. */
static uint8_t *put_tl(uint8_t *p, uint8_t tag, size_t n)
{
    *p++ = tag;
    return ber_put_len(p, n);
}

static size_t tlv_size(size_t n)
{
    return 1 + ber_len_size(n) + n;
}

static size_t int_len(uint32_t v)
{
    size_t n = 1;
    while (n < 5 && (n == 4 ? v > 0x7fffffffu : v >= (1u << (8 * n - 1))))
        n++;
    return n;
}

static uint8_t *put_int(uint8_t *p, uint32_t v)
{
    size_t n = int_len(v);
    p = put_tl(p, BER_INTEGER, n);
    for (size_t i = n; i > 0; i--)
        *p++ = i > 4 ? 0 : (uint8_t)(v >> (8 * (i - 1)));
    return p;
}

static uint8_t *put_octets(uint8_t *p, const uint8_t *v, size_t n)
{
    p = put_tl(p, BER_OCTET_STRING, n);
    memcpy(p, v, n);
    return p + n;
}

/* What a message we send is made of. */
struct outgoing {
    int level;
    int32_t msg_id;
    const uint8_t *user;
    size_t user_len;
    struct usm_keys *keys;         /* NULL at noAuthNoPriv */
    const uint8_t *scoped;         /* the plaintext ScopedPDU */
    size_t scoped_len;
};

/* Writes the whole message o into u->out (RFC 3412 §6, RFC 3414 §3.1); returns its length,
 * 0 on a crypto failure. */
static size_t write_message(struct usm *u, const struct outgoing *o)
{
    const struct usm_user *user = o->keys ? o->keys->user : NULL;
    size_t mac_len = o->level ? AUTH[user->auth].mac_len : 0;
    uint8_t salt[USM_SALT_LEN];
    const uint8_t *data = o->scoped;
    size_t data_len = o->scoped_len;
    uint32_t boots = u->own.boots, now = (uint32_t)engine_time(u);
    static const uint8_t zeros[48];

    if (o->level & 2) {              /* encrypt into u->work's tail: the ScopedPDU is there */
        struct usm_keys *k = o->keys;
        uint64_t s = u->salt++;
        if (user->priv == USM_PRIV_DES) {          /* boots || a counter */
            for (int i = 0; i < 4; i++) {
                salt[i] = (uint8_t)(boots >> (24 - 8 * i));
                salt[4 + i] = (uint8_t)(s >> (24 - 8 * i));
            }
        } else {
            for (int i = 0; i < 8; i++)
                salt[i] = (uint8_t)(s >> (56 - 8 * i));
        }
        size_t padded = user->priv == USM_PRIV_DES ? (data_len + 7) / 8 * 8 : data_len;
        if (padded > sizeof u->work / 2)
            return 0;
        uint8_t *plain = u->work + sizeof u->work / 2 - padded, iv[16];
        memmove(plain, data, data_len);
        memset(plain + data_len, 0, padded - data_len);
        uint8_t *cipher = u->work + sizeof u->work / 2;
        int outl = 0, fin = 0;
        make_iv(k, salt, boots, now, iv);
        if (!EVP_EncryptInit_ex2(k->enc, NULL, NULL, iv, NULL) ||
            !EVP_EncryptUpdate(k->enc, cipher, &outl, plain, (int)padded) ||
            !EVP_EncryptFinal_ex(k->enc, cipher + outl, &fin) ||
            (size_t)(outl + fin) != padded)
            return 0;
        data = cipher;
        data_len = padded;
    }
    size_t data_tlv = (o->level & 2) ? tlv_size(data_len) : data_len;
    size_t sec = tlv_size(u->own.id_len) + tlv_size(int_len(boots)) + tlv_size(int_len(now)) +
                 tlv_size(o->user_len) + tlv_size(mac_len) +
                 tlv_size((o->level & 2) ? USM_SALT_LEN : 0);
    size_t header = tlv_size(int_len((uint32_t)o->msg_id)) + tlv_size(int_len(65507)) +
                    tlv_size(1) + tlv_size(1);
    size_t msg = 3 + tlv_size(header) + tlv_size(tlv_size(sec)) + data_tlv;
    if (tlv_size(msg) > sizeof u->out)
        return 0;
    uint8_t *p = put_tl(u->out, BER_SEQUENCE, msg), *mac_at;
    p = put_int(p, 3);
    p = put_tl(p, BER_SEQUENCE, header);
    p = put_int(p, (uint32_t)o->msg_id);
    p = put_int(p, 65507);
    uint8_t flags = (uint8_t)o->level;
    p = put_octets(p, &flags, 1);
    p = put_int(p, 3);
    p = put_tl(p, BER_OCTET_STRING, tlv_size(sec));
    p = put_tl(p, BER_SEQUENCE, sec);
    p = put_octets(p, u->own.id, u->own.id_len);
    p = put_int(p, boots);
    p = put_int(p, now);
    p = put_octets(p, o->user, o->user_len);
    p = put_tl(p, BER_OCTET_STRING, mac_len);
    mac_at = p;
    memcpy(p, zeros, mac_len);
    p += mac_len;
    p = put_octets(p, salt, (o->level & 2) ? USM_SALT_LEN : 0);
    if (o->level & 2)
        p = put_tl(p, BER_OCTET_STRING, data_len);
    memcpy(p, data, data_len);
    p += data_len;
    size_t total = (size_t)(p - u->out);
    if (o->level && !mac_of(o->keys, u->out, total, mac_at, mac_len, mac_at))
        return 0;
    return total;
}

/* Writes the ScopedPDU (contextEngineID, contextName, the PDU of pdu_len octets already
 * at u->work + room) at the start of u->work; returns its length. */
static size_t write_scoped(struct usm *u, const uint8_t *ctx_engine, size_t ctx_engine_len,
                           const uint8_t *ctx_name, size_t ctx_name_len, const uint8_t *pdu,
                           size_t pdu_len)
{
    size_t content = tlv_size(ctx_engine_len) + tlv_size(ctx_name_len) + pdu_len;
    if (tlv_size(content) > sizeof u->work / 2)
        return 0;
    uint8_t *p = put_tl(u->work, BER_SEQUENCE, content);
    p = put_octets(p, ctx_engine, ctx_engine_len);
    p = put_octets(p, ctx_name, ctx_name_len);
    memmove(p, pdu, pdu_len);
    return tlv_size(content);
}

size_t usm_report_write(struct usm *u, const struct usm_in *in, const uint8_t **out)
{
    /* The request's request-id and context when its ScopedPDU can be read. */
    struct snmp_msg m;
    struct snmp_v3 v3 = in->v3;
    static const uint8_t no_id[] = {BER_INTEGER, 1, 0};
    const uint8_t *reqid = no_id;
    size_t reqid_len = sizeof no_id;
    const uint8_t *ctx_name = NULL;
    size_t ctx_name_len = 0;
    if (!in->report)
        return 0;
    if (in->scoped && snmp_decode_scoped(&m, in->scoped, in->scoped_len, &v3) == SNMP_OK) {
        reqid = m.request_tlv.start;
        reqid_len = (size_t)(m.request_tlv.val + m.request_tlv.len - reqid);
        ctx_name = v3.context_name.val;
        ctx_name_len = v3.context_name.len;
    }
    /* Report-PDU { request-id, 0, 0, { { usmStats<n>.0, Counter32 count } } }, written at
     * the middle of u->out (free until write_message). */
    uint8_t oid[] = {0x2b, 6, 1, 6, 3, 15, 1, 1, (uint8_t)(in->stat + 1), 0};
    uint32_t count = u->stats[in->stat];
    size_t val = int_len(count);
    size_t vb = tlv_size(sizeof oid) + tlv_size(val);
    size_t list = tlv_size(vb);
    size_t pdu = reqid_len + 3 + 3 + tlv_size(list);
    uint8_t *start = u->out + sizeof u->out / 2, *p = start;
    p = put_tl(p, SNMP_PDU_REPORT, pdu);
    memcpy(p, reqid, reqid_len);
    p += reqid_len;
    p = put_int(p, 0);
    p = put_int(p, 0);
    p = put_tl(p, BER_SEQUENCE, list);
    p = put_tl(p, BER_SEQUENCE, vb);
    p = put_tl(p, BER_OID, sizeof oid);
    memcpy(p, oid, sizeof oid);
    p += sizeof oid;
    p = put_int(p, count);
    start[p - start - val - 2] = SNMP_COUNTER32;      /* the INTEGER's tag, as Counter32 */
    size_t scoped = write_scoped(u, u->own.id, u->own.id_len, ctx_name, ctx_name_len, start,
                                 (size_t)(p - start));
    int timed = in->stat == USM_STAT_NOT_IN_TIME_WINDOWS && in->keys;
    struct outgoing o = {timed ? SNMP_AUTHNOPRIV : SNMP_NOAUTHNOPRIV, in->msg_id,
                         in->v3.user, in->v3.user_len,
                         timed ? (struct usm_keys *)in->keys : NULL, u->work, scoped};
    size_t n = scoped ? write_message(u, &o) : 0;
    *out = u->out;
    return n;
}

size_t usm_response_write(struct usm *u, const struct usm_in *in, const struct snmp_msg *m,
                          const uint8_t **out)
{
    size_t pdu = snmp_response_pdu_size(m);
    if (pdu > sizeof u->out / 2)
        return 0;
    uint8_t *at = u->out + sizeof u->out / 2;
    snmp_response_pdu_write(m, at);
    size_t scoped = write_scoped(u, m->v3->context_engine.val, m->v3->context_engine.len,
                                 m->v3->context_name.val, m->v3->context_name.len, at, pdu);
    struct outgoing o = {in->v3.level, in->msg_id, in->v3.user, in->v3.user_len,
                         (struct usm_keys *)in->keys, u->work, scoped};
    *out = u->out;
    return scoped ? write_message(u, &o) : 0;
}

int usm_sign(const struct usm_in *in, uint8_t *buf, size_t len)
{
    struct usm_keys *k = (struct usm_keys *)in->keys;
    if (!k || !k->mac || !in->auth_params || in->auth_params < buf ||
        in->auth_params_len != AUTH[k->user->auth].mac_len ||
        in->auth_params + in->auth_params_len > buf + len)
        return 0;
    uint8_t *at = buf + (in->auth_params - buf);
    return mac_of(k, buf, len, at, in->auth_params_len, at);
}
