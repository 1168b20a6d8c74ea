/* win/include/sys/uio.h: see compat_win.h. */
#include "compat_win.h"
