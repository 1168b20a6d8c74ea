/* win/include/sys/un.h: see compat_win.h. */
#include "compat_win.h"
