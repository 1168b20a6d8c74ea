/* daemon/notify_win.c: systemd does not exist on Windows: nothing to tell (the service's
 * state goes to the Service Control Manager instead: main_win.c). Owns nothing. */
#include "daemon.h"

void notify_systemd(const char *state)
{
    (void)state;
}
