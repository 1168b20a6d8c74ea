/* win/include/sys/socket.h: see compat_win.h. */
#include "compat_win.h"
