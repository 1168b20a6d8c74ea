/* daemon/sdwatch_win.c: systemd's service watchdog does not exist on Windows (a service's
 * state goes to the Service Control Manager: main_win.c): no WATCHDOG_USEC, so the workers
 * stamp no heartbeat, no tick runs and no STATUS= is sent, as under Linux outside systemd.
 * The same functions as sdwatch.c (daemon.h). Owns nothing. */
#include "daemon.h"

#include <string.h>

long long sdwatch_configure(struct sdwatch *sw, struct logger *log)
{
    (void)log;
    memset(sw, 0, sizeof *sw);
    return 0;
}

int sdwatch_start(struct daemon_ctx *dc, char *err, size_t errlen)
{
    (void)dc;
    (void)err;
    (void)errlen;
    return 0;
}

void sdwatch_stop(struct sdwatch *sw)
{
    (void)sw;
}

void sdwatch_notify(struct daemon_ctx *dc, const char *state, const char *note)
{
    (void)dc;
    (void)state;
    (void)note;
}
