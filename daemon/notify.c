/* daemon/notify.c: the systemd notification protocol (READY=1, RELOADING=1, STOPPING=1,
 * STATUS=...), spoken directly on $NOTIFY_SOCKET so no libsystemd is needed. */
#include "daemon.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof un.sun_path)
        return;
    memcpy(un.sun_path, path, n);
    if (un.sun_path[0] == '@')
        un.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ssize_t r = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&un, len);
    (void)r;
    close(fd);
}
