/* bindings/lmib.h: the MIB name table as a Lua value (module_mib.c), for the modules that
 * take one (module_ber.c). */
#ifndef LUADGRAM_LMIB_H
#define LUADGRAM_LMIB_H

#include <lua.h>

#include "mib.h"

/* The table of the luadgram.mib object at idx; NULL when idx is nil or none; raises an
 * argument error for anything else. */
const struct mib_table *lmib_opt(lua_State *L, int idx);

#endif
