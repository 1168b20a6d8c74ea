/* win/include/netinet/in.h: see compat_win.h. */
#include "compat_win.h"
