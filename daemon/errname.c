/* daemon/errname.c: errno value -> POSIX symbolic name, for logs and the Lua API. */
#include "errname.h"

#include <errno.h>
#include <stdio.h>

struct errname_entry {
    int value;
    const char *name;
};

/* The errors a datagram daemon meets: socket, address, ICMP and resource errors. */
static const struct errname_entry errname_table[] = {
    {EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {EINTR, "EINTR"}, {EIO, "EIO"},
    {EBADF, "EBADF"}, {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"}, {EACCES, "EACCES"},
    {EFAULT, "EFAULT"}, {EBUSY, "EBUSY"}, {EEXIST, "EEXIST"}, {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"}, {EINVAL, "EINVAL"}, {ENFILE, "ENFILE"}, {EMFILE, "EMFILE"},
    {ENOSPC, "ENOSPC"}, {EROFS, "EROFS"}, {EPIPE, "EPIPE"}, {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOTSOCK, "ENOTSOCK"}, {EDESTADDRREQ, "EDESTADDRREQ"}, {EMSGSIZE, "EMSGSIZE"},
    {EPROTOTYPE, "EPROTOTYPE"}, {ENOPROTOOPT, "ENOPROTOOPT"},
    {EPROTONOSUPPORT, "EPROTONOSUPPORT"}, {EOPNOTSUPP, "EOPNOTSUPP"},
    {EAFNOSUPPORT, "EAFNOSUPPORT"}, {EADDRINUSE, "EADDRINUSE"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL"}, {ENETDOWN, "ENETDOWN"}, {ENETUNREACH, "ENETUNREACH"},
    {ENETRESET, "ENETRESET"}, {ECONNABORTED, "ECONNABORTED"}, {ECONNRESET, "ECONNRESET"},
    {ENOBUFS, "ENOBUFS"}, {EISCONN, "EISCONN"}, {ENOTCONN, "ENOTCONN"},
    {ETIMEDOUT, "ETIMEDOUT"}, {ECONNREFUSED, "ECONNREFUSED"}, {EHOSTDOWN, "EHOSTDOWN"},
    {EHOSTUNREACH, "EHOSTUNREACH"}, {EALREADY, "EALREADY"}, {EINPROGRESS, "EINPROGRESS"},
    {EPROTO, "EPROTO"},
};

const char *errno_name(int e)
{
    for (size_t i = 0; i < sizeof errname_table / sizeof errname_table[0]; i++)
        if (errname_table[i].value == e)
            return errname_table[i].name;
    return "EUNKNOWN";
}
