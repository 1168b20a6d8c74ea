/* daemon/errname.h: POSIX error names ("ECONNREFUSED") for errno values, the form errors
 * take in logs and in the Lua API. */
#ifndef LUADGRAM_ERRNAME_H
#define LUADGRAM_ERRNAME_H

/* The symbolic name of errno value e, or "E<number>" (in a static per-value buffer that is
 * never overwritten for the same value) when it is not one this table knows. */
const char *errno_name(int e);

#endif
