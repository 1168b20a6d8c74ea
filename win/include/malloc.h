/* win/include/malloc.h: see compat_win.h. */
#include_next <malloc.h>
#include "compat_win.h"
