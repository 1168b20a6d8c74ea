/* win/include/sys/time.h: see compat_win.h. */
#include_next <sys/time.h>
#include "compat_win.h"
