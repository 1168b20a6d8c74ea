/* bindings/publish.c: luadgram.nats(options) and luadgram.redis(options), publishers for any
 * handler. A publisher is a userdata owning one struct output (daemon/output/): its thread
 * and loop, fed by :publish() from the worker's loop through the output's queue; :close()
 * or its __gc stops and closes it (records in flight or still queued go to its spool). */
#include "lbind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "nats_out.h"
#include "redis_out.h"
#include "worker.h"

#define PUBLISHER_META "luadgram.publisher"

struct publisher {
    struct output out;
    int open;
    char subject[256];   /* the default subject (NATS) or stream key (Redis) */
};

/* Raises the option error; luaL_error prefixes the handler's position (the caller). */
static int pub_error(lua_State *L, const char *kind, const char *msg)
{
    return luaL_error(L, "luadgram.%s: %s", kind, msg);
}

static const char *pub_opt_string(lua_State *L, int t, const char *key, const char *kind,
                                  int required)
{
    lua_getfield(L, t, key);
    if (lua_isnil(L, -1) && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "option '%s' must be a non-empty string", key);
        pub_error(L, kind, msg);
    }
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the options table keeps it alive */
    return s;
}

static lua_Integer pub_opt_int(lua_State *L, int t, const char *key, const char *kind,
                               lua_Integer dflt, lua_Integer min, lua_Integer max)
{
    lua_getfield(L, t, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return dflt;
    }
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok || v < min || v > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "option '%s' must be an integer from %lld to %lld", key,
                 (long long)min, (long long)max);
        pub_error(L, kind, msg);
    }
    return v;
}

/* The options every output shares: name, max_inflight, queue_bytes, nice,
 * spool = { path =, max_bytes = }. Creates the userdata (on top) and its output; raises on
 * a bad option. */
static struct publisher *pub_new(lua_State *L, const char *kind)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *name = pub_opt_string(L, 1, "name", kind, 0);
    if (!name)
        name = kind;
    if (strlen(name) > 60)
        pub_error(L, kind, "option 'name' is longer than 60 bytes");
    struct output_cfg cfg = {name, 0, NULL, 0, 0, 0};
    cfg.max_inflight = (unsigned)pub_opt_int(L, 1, "max_inflight", kind, 4096, 1, 1 << 20);
    cfg.queue_bytes = (size_t)pub_opt_int(L, 1, "queue_bytes", kind, 16 << 20, OUTQ_MIN_BYTES,
                                          1 << 30);
    cfg.nice = (int)pub_opt_int(L, 1, "nice", kind, 10, 0, 19);
    const char *spool_path = NULL;
    lua_Integer spool_max = 0;
    lua_getfield(L, 1, "spool");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            pub_error(L, kind, "option 'spool' must be a table { path =, max_bytes = }");
        int t = lua_gettop(L);
        spool_path = pub_opt_string(L, t, "path", kind, 1);
        spool_max = pub_opt_int(L, t, "max_bytes", kind, 1 << 30, 1 << 16, (lua_Integer)1 << 50);
    }
    lua_pop(L, 1);
    struct worker *w = worker_of(L);
    struct wlistener *wl = wlistener_of(L);
    struct publisher *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    char dir[4200];
    if (spool_path) /* one folder per output and worker: segments are never shared */
        snprintf(dir, sizeof dir, "%s/%s.%s.%d", spool_path, wl->cfg->name, name, w->slot + 1);
    struct output_env env = {w->d->log, w->d->stats, wl->cfg->name, w->slot};
    cfg.spool_dir = spool_path ? dir : NULL;
    cfg.spool_max = (uint64_t)spool_max;
    char err[512];
    if (output_init(&p->out, &env, &cfg, err, sizeof err) != 0) {
        output_close(&p->out);
        pub_error(L, kind, err);
    }
    p->open = 1;
    luaL_setmetatable(L, PUBLISHER_META);
    return p;
}

/* A transport's open, run on the output's thread (output_call). */
struct pub_open {
    struct output *o;
    const struct nats_out_cfg *nats;
    const struct redis_out_cfg *redis;
    char err[512];
};

static int pub_open_transport(void *arg)
{
    struct pub_open *a = arg;
    if (a->nats)
        return nats_out_open(a->o, a->o->base, a->nats, a->err, sizeof a->err);
    return redis_out_open(a->o, a->o->base, a->redis, a->err, sizeof a->err);
}

/* Starts p's output thread and opens the transport there; raises on failure. */
static void pub_open(lua_State *L, struct publisher *p, const char *kind, struct pub_open *a)
{
    a->o = &p->out;
    a->err[0] = '\0';
    if (output_start(&p->out, a->err, sizeof a->err) != 0 ||
        output_call(&p->out, pub_open_transport, a) != 0) {
        output_close(&p->out);
        p->open = 0;
        pub_error(L, kind, a->err);
    }
}

/* luadgram.nats{ servers =, subject =, stream =, create =, max_inflight =, spool =,
 * ack_wait = } -> publisher */
static int pub_nats(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *servers[16];
    int nservers = 0;
    lua_getfield(L, 1, "servers");
    if (lua_type(L, -1) == LUA_TSTRING) {
        servers[nservers++] = lua_tostring(L, -1);
    } else if (lua_istable(L, -1)) {
        for (int i = 1; i <= 16; i++) {
            if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
                lua_pop(L, 1);
                break;
            }
            servers[nservers++] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    }
    if (nservers == 0)
        pub_error(L, "nats", "option 'servers' must list 1 to 16 \"nats://host:port\" strings");
    int servers_idx = lua_gettop(L); /* keeps the strings */
    struct nats_out_cfg cfg = {servers, nservers, NULL, NULL, 0, 1, 0, 120, 5000};
    cfg.subject = pub_opt_string(L, 1, "subject", "nats", 1);
    if (!nats_subject_ok(cfg.subject, strlen(cfg.subject)))
        pub_error(L, "nats", lua_pushfstring(L, "bad subject '%s' (dot-separated tokens, "
                                                "no spaces or wildcards)", cfg.subject));
    cfg.stream = pub_opt_string(L, 1, "stream", "nats", 1);
    cfg.ack_wait_ms = pub_opt_int(L, 1, "ack_wait", "nats", 5, 1, 3600) * 1000;
    lua_getfield(L, 1, "create");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            pub_error(L, "nats", "option 'create' must be a table { replicas =, max_bytes =, "
                                 "duplicate_window = }");
        int t = lua_gettop(L);
        cfg.create = 1;
        cfg.replicas = pub_opt_int(L, t, "replicas", "nats", 1, 1, 5);
        cfg.max_bytes = pub_opt_int(L, t, "max_bytes", "nats", 0, 0, (lua_Integer)1 << 60);
        cfg.duplicate_window_s = pub_opt_int(L, t, "duplicate_window", "nats", 120, 1, 86400);
    }
    lua_pop(L, 1);
    struct publisher *p = pub_new(L, "nats");
    snprintf(p->subject, sizeof p->subject, "%s", cfg.subject);
    struct pub_open a = {.nats = &cfg};
    pub_open(L, p, "nats", &a);
    (void)servers_idx;
    return 1;
}

/* luadgram.redis{ server = "host:port", stream =, maxlen =, max_inflight =, spool = } */
static int pub_redis(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct redis_out_cfg cfg;
    cfg.server = pub_opt_string(L, 1, "server", "redis", 1);
    cfg.stream = pub_opt_string(L, 1, "stream", "redis", 1);
    if (strlen(cfg.stream) > 255)
        pub_error(L, "redis", "option 'stream' is longer than 255 bytes");
    cfg.maxlen = pub_opt_int(L, 1, "maxlen", "redis", 0, 0, (lua_Integer)1 << 60);
    struct publisher *p = pub_new(L, "redis");
    snprintf(p->subject, sizeof p->subject, "%s", cfg.stream);
    struct pub_open a = {.redis = &cfg};
    pub_open(L, p, "redis", &a);
    return 1;
}

static struct publisher *pub_check(lua_State *L)
{
    return luaL_checkudata(L, 1, PUBLISHER_META);
}

/* publisher:publish(data [, subject]) -> true | nil, err. Never waits: the record is copied
 * into the output's queue (true), or dropped when the queue is full (nil, err). Whether
 * the output's thread then sent it, spooled it or dropped it (spool full or absent) the
 * publisher's counters and the log say. */
static int pub_publish(lua_State *L)
{
    struct publisher *p = pub_check(L);
    size_t len, subject_len;
    const char *data = luaL_checklstring(L, 2, &len);
    const char *subject = luaL_optlstring(L, 3, p->subject, &subject_len);
    luaL_argcheck(L, p->open, 1, "publisher is closed");
    if (p->out.ops && strcmp(p->out.ops->kind, "nats") == 0)
        luaL_argcheck(L, nats_subject_ok(subject, subject_len), 3, "bad subject");
    char err[512];
    if (output_publish(&p->out, subject, subject_len, data, len, err, sizeof err) != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* publisher:stats() -> { published =, acked =, ..., inflight = } (this worker's) */
static int pub_stats(lua_State *L)
{
    struct publisher *p = pub_check(L);
    lua_createtable(L, 0, OSTATS_NFIELDS);
    for (int f = 0; f < OSTATS_NFIELDS && p->out.st; f++) {
        lua_pushinteger(L, (lua_Integer)atomic_load(&p->out.st->v[f]));
        lua_setfield(L, -2, ostats_names[f]);
    }
    return 1;
}

/* publisher:close(): records waiting for acks go to the spool; idempotent. Also __gc. */
static int pub_close(lua_State *L)
{
    struct publisher *p = pub_check(L);
    if (p->open) {
        p->open = 0;
        output_close(&p->out);
    }
    return 0;
}

static const luaL_Reg pub_methods[] = {
    {"publish", pub_publish}, {"stats", pub_stats}, {"close", pub_close}, {NULL, NULL},
};

void publish_register(lua_State *L)
{
    if (luaL_newmetatable(L, PUBLISHER_META)) {
        lua_newtable(L);
        luaL_setfuncs(L, pub_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, pub_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, pub_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, pub_nats);
    lua_setfield(L, -2, "nats");
    lua_pushcfunction(L, pub_redis);
    lua_setfield(L, -2, "redis");
}
