/* win/include/signal.h: see compat_win.h. */
#include_next <signal.h>
#include "compat_win.h"
