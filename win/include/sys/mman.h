/* win/include/sys/mman.h: see compat_win.h. */
#include "compat_win.h"
