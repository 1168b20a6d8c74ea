/* win/include/errno.h: the POSIX codes mingw-w64 lacks; see compat_win.h. */
#include_next <errno.h>
#ifndef EHOSTDOWN
#define EHOSTDOWN 201
#endif
#ifndef ESHUTDOWN
#define ESHUTDOWN 202
#endif
