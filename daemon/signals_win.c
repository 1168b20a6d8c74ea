/* daemon/signals_win.c: what stops and reloads the daemon on Windows (daemon.h). Ctrl-C,
 * Ctrl-Break and closing the console stop it (SetConsoleCtrlHandler), as does the service's
 * SERVICE_CONTROL_STOP (main_win.c: stop_signals_win_stop); `luadgramd --reload PID` sets
 * the named event "luadgramd-reload-PID" that a thread of ours waits on, in place of SIGHUP.
 * Each of these makes a libevent event active on the main loop (libevent's Windows threads
 * make that safe from another thread), so stop and reload run there as on Linux. Owns
 * struct stop_signals (its two events, the named event and the waiting thread) and
 * stop_signals_win, the one pointer the console handler and the service find it by. */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>
#include <event2/event.h>

#include "daemon.h"
#include "signals_win.h"

struct stop_signals {
    struct daemon_ctx *dc;
    struct event *stop_ev, *reload_ev;
    HANDLE reload_event, quit, waiter;
};

static struct stop_signals_win {
    SRWLOCK lock;
    struct stop_signals *current;
} stop_signals_win = {SRWLOCK_INIT, NULL};

void stop_signals_win_stop(void)
{
    AcquireSRWLockShared(&stop_signals_win.lock);
    if (stop_signals_win.current)
        event_active(stop_signals_win.current->stop_ev, EV_SIGNAL, 1);
    ReleaseSRWLockShared(&stop_signals_win.lock);
}

static BOOL WINAPI on_console_ctrl(DWORD type)
{
    if (type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT && type != CTRL_CLOSE_EVENT)
        return FALSE;
    stop_signals_win_stop();
    return TRUE;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct daemon_ctx *dc = arg;
    if (what & EV_TIMEOUT)
        return; /* only the day-long wait that keeps the loop from ending (below) */
    log_info(&dc->log, "stop requested (Ctrl-C, Ctrl-Break or service stop): stopping");
    event_base_loopbreak(dc->base);
}

static void on_reload(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    daemon_reload(arg);
}

static DWORD WINAPI reload_waiter(LPVOID arg)
{
    struct stop_signals *s = arg;
    HANDLE both[2] = {s->quit, s->reload_event};
    while (WaitForMultipleObjects(2, both, FALSE, INFINITE) == WAIT_OBJECT_0 + 1)
        event_active(s->reload_ev, EV_SIGNAL, 1);
    return 0;
}

void stop_signals_win_event_name(unsigned long pid, wchar_t *buf, size_t n)
{
    _snwprintf(buf, n, L"luadgramd-reload-%lu", pid);
    buf[n - 1] = 0;
}

struct stop_signals *stop_signals_install(struct daemon_ctx *dc)
{
    struct stop_signals *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->dc = dc;
    wchar_t name[64];
    stop_signals_win_event_name(GetCurrentProcessId(), name, 64);
    /* Pending with a day-long timeout, so that the main loop does not end for lack of
     * events (on Linux the signal events keep it). */
    static const struct timeval day = {86400, 0};
    s->stop_ev = event_new(dc->base, -1, EV_PERSIST, on_stop, dc);
    s->reload_ev = event_new(dc->base, -1, 0, on_reload, dc);
    s->reload_event = CreateEventW(NULL, FALSE, FALSE, name);
    s->quit = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!s->stop_ev || !s->reload_ev || !s->reload_event || !s->quit ||
        event_add(s->stop_ev, &day) != 0)
        goto fail;
    s->waiter = CreateThread(NULL, 0, reload_waiter, s, 0, NULL);
    if (!s->waiter)
        goto fail;
    AcquireSRWLockExclusive(&stop_signals_win.lock);
    stop_signals_win.current = s;
    ReleaseSRWLockExclusive(&stop_signals_win.lock);
    SetConsoleCtrlHandler(on_console_ctrl, TRUE);
    return s;
fail:
    stop_signals_free(s);
    return NULL;
}

void stop_signals_free(struct stop_signals *s)
{
    if (!s)
        return;
    AcquireSRWLockExclusive(&stop_signals_win.lock);
    if (stop_signals_win.current == s) {
        stop_signals_win.current = NULL;
        SetConsoleCtrlHandler(on_console_ctrl, FALSE);
    }
    ReleaseSRWLockExclusive(&stop_signals_win.lock);
    if (s->waiter) {
        SetEvent(s->quit);
        WaitForSingleObject(s->waiter, INFINITE);
        CloseHandle(s->waiter);
    }
    if (s->quit)
        CloseHandle(s->quit);
    if (s->reload_event)
        CloseHandle(s->reload_event);
    if (s->stop_ev)
        event_free(s->stop_ev);
    if (s->reload_ev)
        event_free(s->reload_ev);
    free(s);
}
