/* win/include/unistd.h: see compat_win.h. */
#include_next <unistd.h>
#include "compat_win.h"
#define close compat_close
