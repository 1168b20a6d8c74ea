/* daemon/config.h: the configuration, read from a Lua file (`listen "name" { ... }` and
 * global settings) into plain C structs. Every error names FILE:LINE and the key. */
#ifndef LUADGRAM_CONFIG_H
#define LUADGRAM_CONFIG_H

#include <pthread.h>
#include <stddef.h>
#include <lua.h>
#include "netio.h"
#include "peerlimit.h"

struct lalloc;

struct listener_cfg {
    char *name;
    int line;              /* line of its `listen` */
    int bind_line;         /* line of its `bind` */
    size_t nbinds;
    char **bind_strs;      /* as written */
    struct sock_spec *binds;
    char *handler;         /* as written */
    char *handler_path;    /* resolved script file */
    unsigned batch;        /* recv.batch */
    size_t size;           /* recv.size */
    int rcvbuf;            /* recv.rcvbuf, 0 = kernel default */
    int want_ttl, want_tos, want_time;
    int reuseport;
    int unix_mode;         /* -1: leave as created */
    long long handler_memory; /* bytes its Lua state may hold, 0 = no cap, -1: the global */
    int unsafe;            /* unsafe = true: the sandbox's forbidden calls are allowed */
    struct peerlimit_cfg *ratelimit; /* ratelimit = { ... }, or NULL: no per-peer limit */
    struct mcast_join *joins; /* join = { ... }: multicast groups */
    size_t njoins;
    int join_line;
    int freebind;          /* freebind = true */
    char device[16];       /* device = "eth0", "" if none */
    int v6only;            /* -1: as the bind says; 0 or 1 */
    int tos, ttl;          /* -1: the kernel's */
    int options_ref;       /* registry reference (in config->L) to its options table */
    int complete;          /* its listen call ran to the end */
};

struct config {
    char *file;            /* as given */
    char *dir;             /* its folder */
    int workers;
    char *user;            /* NULL: keep the current user */
    int log_level;
    char *metrics;         /* "ip:port" or NULL */
    size_t npaths;
    char **script_path;    /* absolute or relative to the cwd, searched in order */
    long handler_budget;   /* instructions per handler call, 0 = no limit */
    double handler_timeout; /* seconds per handler call, 0 = no limit */
    long long handler_memory; /* bytes per Lua state, 0 = no limit */
    size_t nlisteners;
    struct listener_cfg *listeners;
    lua_State *L;          /* the configuration's own state: keeps the options tables */
    struct lalloc *pool;   /* ... and its memory (capped) */
    pthread_mutex_t options_lock; /* config_push_options: workers copy from L's stack */
};

/* Reads and checks FILE. Returns 0 and *out, or -1 with err = "FILE:LINE: message". */
int config_load(const char *file, struct config **out, char *err, size_t errlen);
void config_free(struct config *cfg);

/* Pushes onto L a deep copy of the listener's options table (strings, numbers, booleans,
 * tables; already checked to hold nothing else). Safe from any thread (it locks); L must
 * not raise while copying (a state's cap is lifted around it, worker.c). */
void config_push_options(const struct config *cfg, const struct listener_cfg *lc, lua_State *L);

/* The package.path string for handler states: each script_path folder's ?.lua, ?/init.lua
 * and lib/?.lua, then Lua's default path. Caller frees. */
char *config_package_path(const struct config *cfg);

/* The handler_memory of a listener: its own, else the global one. */
static inline long long config_handler_memory(const struct config *cfg,
                                              const struct listener_cfg *lc)
{
    return lc->handler_memory >= 0 ? lc->handler_memory : cfg->handler_memory;
}

/* Finds a listener by name, or NULL. */
const struct listener_cfg *config_listener(const struct config *cfg, const char *name);

#endif
