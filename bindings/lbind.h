/* bindings/lbind.h: what the daemon calls in the Lua bindings: the message object, address
 * and error objects, and the `luadgram` module with its preloads. */
#ifndef LUADGRAM_LBIND_H
#define LUADGRAM_LBIND_H

#include <lua.h>
#include "dgram.h"

struct wlistener;
struct wsock;
struct msg_obj;

/* Pushes an address object: a table {family=, ip=, port=} or {family="unix", path=} whose
 * tostring is "ip:port", "[ip6]:port" or the path. An empty (unbound) address pushes nil. */
void addrobj_push(lua_State *L, const struct sockaddr *sa, socklen_t len);

/* Pushes a new message object for listener wl (one per listener, reused for every
 * datagram) and returns it. */
struct msg_obj *msg_new(lua_State *L, struct wlistener *wl);
/* Makes m stand for datagram d received on ws; msg_unbind ends that (further use raises
 * "message expired"). */
void msg_bind(struct msg_obj *m, struct dgram *d, struct wsock *ws);
void msg_unbind(struct msg_obj *m);
/* Inside the batch's protected call, m bound, its message table at msg_idx and the string
 * "data" at key_idx: sets msg.data as a field when the handler reads it (else nothing). */
void msg_set_data(lua_State *L, struct msg_obj *m, int msg_idx, int key_idx);
/* After the batch (msg_ref: the message table's registry reference): removes what
 * msg_set_data set, so that msg.data outside a call raises "message expired" again; nothing
 * when it set nothing. Never raises. */
void msg_clear_data(lua_State *L, struct msg_obj *m, int msg_ref);
/* The datagram of the live message object at idx, for C modules that read it in place
 * (luadgram.syslog); raises like msg.data when idx is not a message or it has expired. */
const struct dgram *msg_dgram(lua_State *L, int idx);
/* 1 if the value at idx is a message object (live or expired). */
int msg_is(lua_State *L, int idx);

/* Pushes the table handed to a handler's error function. */
void sockerr_push(lua_State *L, const struct sockerr *e, const char *listener);

/* Registers require "luadgram" (and the codec modules) in package.preload. */
void lbind_preload(lua_State *L);

int luaopen_luadgram(lua_State *L);
/* Adds nats and redis (publishers, publish.c) to the luadgram table on top. */
void publish_register(lua_State *L);
/* require "luadgram.ber": the BER/SNMP decoder (module_ber.c). */
int luaopen_luadgram_ber(lua_State *L);
/* require "luadgram.syslog": the C syslog parser and JSON lines (module_syslog.c). */
int luaopen_luadgram_syslog(lua_State *L);
/* require "luadgram.mib": MIB names loaded with libsmi at init (module_mib.c). */
int luaopen_luadgram_mib(lua_State *L);
/* require "luadgram.file": writev of many strings at once (module_file.c). */
int luaopen_luadgram_file(lua_State *L);

#endif
