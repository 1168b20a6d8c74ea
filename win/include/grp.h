/* win/include/grp.h: see compat_win.h. */
#include "compat_win.h"
