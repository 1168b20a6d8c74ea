/* win/include/sys/stat.h: mkdir without a mode; see compat_win.h. */
#include_next <sys/stat.h>
#include <io.h>
#include <direct.h>
#ifndef LUADGRAM_COMPAT_MKDIR
#define LUADGRAM_COMPAT_MKDIR
static inline int compat_mkdir(const char *path, int mode)
{
    (void)mode;
    return _mkdir(path);
}
#define mkdir(p, m) compat_mkdir((p), (m))
#endif
