/* win/include/net/if.h: see compat_win.h. */
#include "compat_win.h"
#include <iphlpapi.h>
#include <netioapi.h>
