/* bindings/msg.c: the message object handed to H.message. One object per listener per
 * worker is reused for every datagram (no allocation per datagram); each field is computed
 * from the C record only when the handler reads it. Outside its message call the object
 * raises "message expired".
 *
 * The object is a table holding only `reply` (a closure made for this message), with a
 * metatable of its own whose __index computes every other field: msg:reply is then a plain
 * table read, not a metamethod call (~300 instructions per datagram). Once the handler has
 * read msg.data, the dispatcher sets `data` in the table for each datagram (msg_set_data)
 * and removes it at the end of the batch (msg_clear_data): a plain read too, and a string
 * made only for handlers that read it. Its C record (struct msg_obj, a userdata) is an
 * upvalue of its closures, and the registry's weak table msg_objects maps each message to
 * its record for calls given another listener's message and for C modules (msg_dgram). */
#include "lbind.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <lauxlib.h>

#include "errname.h"
#include "worker.h"

#define MSG_META "luadgram.msg"

struct msg_obj {
    struct dgram *d;        /* the datagram, NULL outside its call */
    struct wsock *ws;       /* the socket it came in on */
    struct wlistener *wl;
    int data_read;          /* the handler has read msg.data: it is set as a field */
    int data_set;           /* msg.data is in the table now */
};

static const char msg_objects_key = 'm'; /* registry: message table -> its msg_obj */

/* Raises the error of a message used outside its call. */
static int msg_expired(lua_State *L)
{
    return luaL_error(L, "message expired (a message is valid only during its message call)");
}

/* The record of the message at idx, or NULL when the value there is not a message. */
static struct msg_obj *msg_lookup(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        return NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &msg_objects_key);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    struct msg_obj *m = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return m;
}

static struct msg_obj *msg_check_at(lua_State *L, int idx)
{
    struct msg_obj *m = msg_lookup(L, idx);
    if (!m)
        luaL_typeerror(L, idx, MSG_META);
    if (!m->d)
        msg_expired(L);
    return m;
}

/* The message at 1, for msg:reply. Hot path: the message this closure was made for
 * (upvalue 1; its record is upvalue 2); any other goes through the registry. */
static struct msg_obj *msg_check(lua_State *L)
{
    if (!lua_rawequal(L, 1, lua_upvalueindex(1)))
        return msg_check_at(L, 1);
    struct msg_obj *m = lua_touserdata(L, lua_upvalueindex(2));
    if (!m->d)
        msg_expired(L);
    return m;
}

/* Whether a reply to d leaves from the right address without packet info: the socket is
 * bound to one unicast address and d was sent to that address itself, not to a broadcast
 * or multicast one (the kernel's ipi_spec_dst is the destination only for unicast). The
 * kernel then sends from the bound address and routes as for any bound socket; packet
 * info on each send costs the kernel about 4 % of an echo (bench/RESULTS.md). */
static int msg_from_bound(const struct wsock *ws, const struct dgram *d)
{
    if (!ws->bound_unicast || (d->flags & DG_MCAST))
        return 0;
    if (d->dst.ss_family == AF_INET6)
        return 1;
    const struct sockaddr_in *dst = (const struct sockaddr_in *)&d->dst;
    const struct sockaddr_in *spec = (const struct sockaddr_in *)&d->spec_dst;
    return (d->has & DG_HAS_SPEC_DST) && spec->sin_addr.s_addr == dst->sin_addr.s_addr;
}

/* msg:reply(data) -> true | nil, err. Sends to the peer from the address the datagram was
 * sent to (msg.dst) on its interface; from the interface's own address when msg.dst is
 * multicast or broadcast. Queued until the end of the batch, order kept. */
static int msg_reply(lua_State *L)
{
    struct msg_obj *m = msg_check(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    struct dgram *d = m->d;
    if (d->peerlen == 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "peer has no address (unbound unix socket)");
        return 2;
    }
    struct sockaddr_storage from;
    memset(&from, 0, sizeof from); /* AF_UNSPEC; for multicast the unspecified address */
    unsigned ifindex = 0;
    if ((d->has & DG_HAS_DST) && (d->dst.ss_family == AF_INET || d->dst.ss_family == AF_INET6) &&
        !msg_from_bound(m->ws, d)) {
        ifindex = d->ifindex;
        if (d->dst.ss_family == AF_INET && (d->has & DG_HAS_SPEC_DST)) {
            /* The kernel's ipi_spec_dst: the destination itself for unicast, the
             * interface's own address for broadcast and multicast. */
            memcpy(&from, &d->spec_dst, sizeof(struct sockaddr_in));
        } else if (!(d->flags & DG_MCAST)) {
            memcpy(&from, &d->dst, sizeof(struct sockaddr_in6));
        } else {
            from.ss_family = d->dst.ss_family; /* unspecified address: kernel picks */
        }
    }
    int err = worker_send(m->wl->w, m->ws, (const struct sockaddr *)&d->peer, d->peerlen, &from,
                          ifindex, data, len);
    if (err) {
        luaL_pushfail(L);
        lua_pushstring(L, errno_name(err));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static void msg_push_creds(lua_State *L, const struct dgram *d)
{
    if (!(d->has & DG_HAS_CREDS)) {
        lua_pushnil(L);
        return;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, d->pid);
    lua_setfield(L, -2, "pid");
    lua_pushinteger(L, d->uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, d->gid);
    lua_setfield(L, -2, "gid");
}

static void msg_push_opt_int(lua_State *L, int present, lua_Integer v)
{
    if (present)
        lua_pushinteger(L, v);
    else
        lua_pushnil(L);
}

/* __index: computes the field asked for (every one but reply, which is in the table).
 * Upvalue 1: the message's record (the metatable is the message's own, hidden behind
 * __metatable, so no other value can reach it). */
static int msg_index(lua_State *L)
{
    struct msg_obj *m = lua_touserdata(L, lua_upvalueindex(1));
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    const char *k = lua_tostring(L, 2);
    if (!m->d)
        return msg_expired(L);
    struct dgram *d = m->d;
    switch (k[0]) {
    case 'b':
        if (strcmp(k, "bcast") == 0) {
            lua_pushboolean(L, (d->flags & DG_BCAST) || worker_is_bcast(m->wl->w, d));
            return 1;
        }
        break;
    case 'c':
        if (strcmp(k, "ctrunc") == 0) {
            lua_pushboolean(L, d->flags & DG_CTRUNC);
            return 1;
        }
        if (strcmp(k, "creds") == 0) {
            msg_push_creds(L, d);
            return 1;
        }
        break;
    case 'd':
        if (strcmp(k, "data") == 0) {
            m->data_read = 1; /* from the next datagram on, a plain field (msg_set_data) */
            lua_pushlstring(L, (const char *)d->data, d->len);
            return 1;
        }
        if (strcmp(k, "dst") == 0) {
            if (d->has & DG_HAS_DST)
                addrobj_push(L, (const struct sockaddr *)&d->dst, sizeof d->dst);
            else
                lua_pushnil(L);
            return 1;
        }
        break;
    case 'i':
        if (strcmp(k, "ifindex") == 0) {
            msg_push_opt_int(L, (d->has & DG_HAS_DST) && d->ifindex, d->ifindex);
            return 1;
        }
        if (strcmp(k, "ifname") == 0) {
            char name[IF_NAMESIZE + 1];
            if ((d->has & DG_HAS_DST) && d->ifindex && if_indextoname(d->ifindex, name))
                lua_pushstring(L, name);
            else
                lua_pushnil(L);
            return 1;
        }
        break;
    case 'l':
        if (strcmp(k, "listener") == 0) {
            lua_pushstring(L, m->wl->cfg->name);
            return 1;
        }
        break;
    case 'm':
        if (strcmp(k, "mcast") == 0) {
            lua_pushboolean(L, d->flags & DG_MCAST);
            return 1;
        }
        break;
    case 'p':
        if (strcmp(k, "peer") == 0) {
            addrobj_push(L, (const struct sockaddr *)&d->peer, d->peerlen);
            return 1;
        }
        break;
    case 's':
        if (strcmp(k, "size") == 0) {
            lua_pushinteger(L, (lua_Integer)d->size);
            return 1;
        }
        break;
    case 't':
        if (strcmp(k, "trunc") == 0) {
            lua_pushboolean(L, d->flags & DG_TRUNC);
            return 1;
        }
        if (strcmp(k, "ttl") == 0) {
            msg_push_opt_int(L, d->has & DG_HAS_TTL, d->ttl);
            return 1;
        }
        if (strcmp(k, "tos") == 0) {
            msg_push_opt_int(L, d->has & DG_HAS_TOS, d->tos);
            return 1;
        }
        if (strcmp(k, "time") == 0) {
            if (d->has & DG_HAS_TIME)
                lua_pushnumber(L, (lua_Number)d->time_sec + (lua_Number)d->time_nsec / 1e9);
            else
                lua_pushnil(L);
            return 1;
        }
        break;
    }
    return 0; /* unknown field: nil */
}

static int msg_newindex(lua_State *L)
{
    return luaL_error(L, "message fields are read-only (field '%s')", luaL_checkstring(L, 2));
}

static int msg_tostring(lua_State *L)
{
    struct msg_obj *m = lua_touserdata(L, lua_upvalueindex(1));
    if (!m->d)
        lua_pushliteral(L, "message (expired)");
    else
        lua_pushfstring(L, "message (%d bytes on %s)", (int)m->d->size, m->wl->cfg->name);
    return 1;
}

const struct dgram *msg_dgram(lua_State *L, int idx)
{
    return msg_check_at(L, idx)->d;
}

int msg_is(lua_State *L, int idx)
{
    return msg_lookup(L, idx) != NULL;
}

struct msg_obj *msg_new(lua_State *L, struct wlistener *wl)
{
    struct msg_obj *m = lua_newuserdatauv(L, sizeof *m, 0); /* record */
    m->d = NULL;
    m->ws = NULL;
    m->wl = wl;
    m->data_read = m->data_set = 0;
    lua_createtable(L, 0, 4); /* record, msg (reply, and room for data) */
    lua_pushvalue(L, -1);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, msg_reply, 2);
    lua_setfield(L, -2, "reply");
    lua_createtable(L, 0, 4); /* record, msg, meta */
    static const struct {
        const char *name;
        lua_CFunction fn;
    } meta[] = {{"__index", msg_index}, {"__newindex", msg_newindex},
                {"__tostring", msg_tostring}};
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
        lua_pushvalue(L, -3);
        lua_pushcclosure(L, meta[i].fn, 1);
        lua_setfield(L, -2, meta[i].name);
    }
    lua_pushliteral(L, MSG_META);
    lua_setfield(L, -2, "__metatable"); /* getmetatable(msg) cannot reach __index */
    lua_setmetatable(L, -2);            /* record, msg */
    /* msg_objects[msg] = record: weak keys, so the entry goes with the message */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &msg_objects_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 4);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &msg_objects_key);
    } /* record, msg, objects */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -4);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_remove(L, -2); /* msg */
    return m;
}

void msg_bind(struct msg_obj *m, struct dgram *d, struct wsock *ws)
{
    m->d = d;
    m->ws = ws;
}

void msg_unbind(struct msg_obj *m)
{
    m->d = NULL;
    m->ws = NULL;
}

void msg_set_data(lua_State *L, struct msg_obj *m, int msg_idx, int key_idx)
{
    if (!m->data_read)
        return;
    lua_pushvalue(L, key_idx);
    lua_pushlstring(L, (const char *)m->d->data, m->d->len);
    lua_rawset(L, msg_idx);
    m->data_set = 1;
}

void msg_clear_data(lua_State *L, struct msg_obj *m, int msg_ref)
{
    if (!m->data_set)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, msg_ref);
    lua_pushliteral(L, "data");
    lua_pushnil(L);
    lua_rawset(L, -3); /* an existing key: no allocation, cannot raise */
    lua_pop(L, 1);
    m->data_set = 0;
}

void sockerr_push(lua_State *L, const struct sockerr *e, const char *listener)
{
    lua_createtable(L, 0, 8);
    addrobj_push(L, (const struct sockaddr *)&e->peer, e->peerlen);
    lua_setfield(L, -2, "peer");
    lua_pushstring(L, errno_name(e->err));
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, e->err);
    lua_setfield(L, -2, "errno");
    lua_pushstring(L, strerror(e->err));
    lua_setfield(L, -2, "message");
    static const char *const origins[] = {"none", "local", "icmp", "icmp6"};
    lua_pushstring(L, e->origin >= 0 && e->origin <= SOCKERR_ORIGIN_ICMP6 ? origins[e->origin]
                                                                           : "unknown");
    lua_setfield(L, -2, "origin");
    if (e->origin == SOCKERR_ORIGIN_ICMP || e->origin == SOCKERR_ORIGIN_ICMP6) {
        lua_pushinteger(L, e->icmp_type);
        lua_setfield(L, -2, "icmp_type");
        lua_pushinteger(L, e->icmp_code);
        lua_setfield(L, -2, "icmp_code");
    }
    if (e->offenderlen) {
        addrobj_push(L, (const struct sockaddr *)&e->offender, e->offenderlen);
        lua_setfield(L, -2, "offender");
    }
    lua_pushlstring(L, (const char *)e->data, e->datalen);
    lua_setfield(L, -2, "data");
    lua_pushstring(L, listener);
    lua_setfield(L, -2, "listener");
}
