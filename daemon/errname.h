/* daemon/errname.h: POSIX error names ("ECONNREFUSED") for errno values, the form errors
 * take in logs and in the Lua API. */
#ifndef LUADGRAM_ERRNAME_H
#define LUADGRAM_ERRNAME_H

/* The symbolic name of errno value e ("ECONNREFUSED"), or "EUNKNOWN" for a value the table
 * does not know (callers that log also log strerror and the number). */
const char *errno_name(int e);

#endif
