/* bindings/module_file.c: the `luadgram.file` Lua module: writing many strings to a file
 * in one system call, for scripts/lib/output_jsonl.lua, whose flush would otherwise join
 * its kept lines into one string (table.concat copies each byte two or three times) only
 * to write it once.
 *
 *   local file = require "luadgram.file"
 *
 *   ok, err = file.writev(fh, parts, n)
 *     Writes the strings parts[1..n] to fh (an io file handle, unbuffered: setvbuf("no"))
 *     with one writev(2), in order: on a file opened for appending the kernel keeps them
 *     together against other writers, like one write of their concatenation. A write cut
 *     short (a full disk) is continued where it stopped, as fwrite does. Returns true, or
 *     nil and the error ("No space left on device (ENOSPC)"). n may be at most
 *     file.WRITEV_MAX (IOV_MAX); more raises, as do parts that are not strings.
 *
 *   ok, err = file.mkdir(path)
 *     Creates the folder path and its missing parents (mode 0777 less the umask), as
 *     `mkdir -p` does, without a shell (handler states have no os.execute). Returns true
 *     (also when it exists), or nil and the error. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <lauxlib.h>
#include <lualib.h>

#include "errname.h"
#include "lbind.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

static int file_writev(lua_State *L)
{
    luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_checkinteger(L, 3);
    luaL_argcheck(L, n >= 0 && n <= IOV_MAX, 3, "out of range (0 to WRITEV_MAX)");
    luaL_argcheck(L, s->closef != NULL && s->f != NULL, 1, "attempt to use a closed file");
    struct iovec iov[IOV_MAX];
    size_t total = 0;
    for (lua_Integer i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, i + 1) != LUA_TSTRING)
            return luaL_error(L, "bad argument #2 to 'writev' (parts[%I] is not a string)",
                              i + 1);
        size_t len;
        iov[i].iov_base = (void *)lua_tolstring(L, -1, &len); /* kept alive by parts */
        iov[i].iov_len = len;
        total += len;
        lua_pop(L, 1);
    }
    if (fflush(s->f) != 0) /* nothing should be buffered; if it is, it goes first */
        goto fail;
    int fd = fileno(s->f);
    struct iovec *v = iov;
    int left = (int)n;
    while (left > 0 && total > 0) {
        ssize_t w = writev(fd, v, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (w == 0) {
            errno = EIO;
            goto fail;
        }
        total -= (size_t)w;
        size_t done = (size_t)w;
        while (left > 0 && done >= v->iov_len) { /* skip what was written */
            done -= v->iov_len;
            v++;
            left--;
        }
        if (left > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
fail:;
    int e = errno;
    luaL_pushfail(L);
    lua_pushfstring(L, "%s (%s)", strerror(e), errno_name(e));
    return 2;
}

/* mkdir, EEXIST on a folder being success. */
static int file_mkdir_one(const char *path)
{
    struct stat st;
    if (mkdir(path, 0777) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return -1;
}

static int file_mkdir(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, len > 0 && len < 4096 && strlen(path) == len, 1, "expected a path");
    char buf[4096];
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = file_mkdir_one(buf);
        *p = '/';
        if (rc != 0)
            goto fail;
    }
    if (file_mkdir_one(buf) != 0)
        goto fail;
    lua_pushboolean(L, 1);
    return 1;
fail:;
    int e = errno;
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s (%s)", path, strerror(e), errno_name(e));
    return 2;
}

int luaopen_luadgram_file(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"writev", file_writev},
        {"mkdir", file_mkdir},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    lua_pushinteger(L, IOV_MAX);
    lua_setfield(L, -2, "WRITEV_MAX");
    return 1;
}
