/* win/include/sched.h: see compat_win.h. */
#include_next <sched.h>
#include "compat_win.h"
