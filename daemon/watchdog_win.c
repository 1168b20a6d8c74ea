/* daemon/watchdog_win.c: the watchdog of watchdog.h on Windows' own calls. Its thread
 * (CreateThread) waits on a stop event for a period (a quarter of the limit, at most
 * 250 ms); when one call has been running for the limit it suspends the thread running it
 * (SuspendThread, then GetThreadContext so the suspension has taken effect), calls
 * wd->on_expire (the worker sets the Lua hook: lua_sethook is the one Lua call allowed
 * from outside, as lua.c does on Windows from its console handler's thread) and resumes
 * it. Owns struct watchdog_win (wd->plat): its thread, its stop event and the owner's
 * handle. */
#include "watchdog.h"

#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

struct watchdog_win {
    HANDLE thread, stop, owner;
    CRITICAL_SECTION lock; /* guards owner */
};

static DWORD WINAPI watchdog_win_main(LPVOID arg)
{
    struct watchdog *wd = arg;
    struct watchdog_win *p = wd->plat;
    struct watchdog_scan scan = {0, 0, (long long)GetTickCount64() * 1000000LL};
    DWORD period_ms = (DWORD)(wd->period_ns / 1000000LL);
    while (WaitForSingleObject(p->stop, period_ms) == WAIT_TIMEOUT) {
        if (watchdog_scan(wd, &scan, (long long)GetTickCount64() * 1000000LL)) {
            EnterCriticalSection(&p->lock);
            if (p->owner && SuspendThread(p->owner) != (DWORD)-1) {
                CONTEXT ctx;
                ctx.ContextFlags = CONTEXT_CONTROL;
                (void)GetThreadContext(p->owner, &ctx);
                if (wd->on_expire)
                    wd->on_expire(wd->expire_arg);
                ResumeThread(p->owner);
            }
            LeaveCriticalSection(&p->lock);
        }
    }
    return 0;
}

static HANDLE watchdog_win_this_thread(void)
{
    HANDLE h = NULL;
    DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &h,
                    THREAD_SUSPEND_RESUME | THREAD_GET_CONTEXT, FALSE, 0);
    return h;
}

int watchdog_start(struct watchdog *wd, double limit_s, char *err, size_t errlen)
{
    watchdog_arm(wd, limit_s);
    struct watchdog_win *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "cannot start the handler watchdog: out of memory");
        return -1;
    }
    InitializeCriticalSection(&p->lock);
    p->owner = watchdog_win_this_thread();
    p->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    wd->plat = p;
    p->thread = p->stop ? CreateThread(NULL, 0, watchdog_win_main, wd, 0, NULL) : NULL;
    if (!p->thread) {
        snprintf(err, errlen, "cannot start the handler watchdog: error %lu",
                 (unsigned long)GetLastError());
        if (p->stop)
            CloseHandle(p->stop);
        if (p->owner)
            CloseHandle(p->owner);
        DeleteCriticalSection(&p->lock);
        free(p);
        wd->plat = NULL;
        return -1;
    }
    wd->running = 1;
    return 0;
}

void watchdog_set_owner(struct watchdog *wd)
{
    if (!wd->running)
        return;
    struct watchdog_win *p = wd->plat;
    HANDLE h = watchdog_win_this_thread();
    EnterCriticalSection(&p->lock);
    if (p->owner)
        CloseHandle(p->owner);
    p->owner = h;
    LeaveCriticalSection(&p->lock);
}

void watchdog_stop(struct watchdog *wd)
{
    if (!wd->running)
        return;
    struct watchdog_win *p = wd->plat;
    SetEvent(p->stop);
    WaitForSingleObject(p->thread, INFINITE);
    CloseHandle(p->thread);
    CloseHandle(p->stop);
    if (p->owner)
        CloseHandle(p->owner);
    DeleteCriticalSection(&p->lock);
    free(p);
    wd->plat = NULL;
    wd->running = 0;
}
