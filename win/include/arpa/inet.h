/* win/include/arpa/inet.h: see compat_win.h. */
#include "compat_win.h"
