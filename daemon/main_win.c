/* daemon/main_win.c: the Windows entry point. Starts Winsock, then either runs the daemon
 * as on Linux (main.c, compiled as luadgramd_main), or:
 *   --service install [-c FILE]  registers the service "luadgramd" with the Service Control
 *                                Manager (demand start; runs "--service run -c FILE")
 *   --service uninstall          removes it
 *   --service run [-c FILE]      what the SCM starts: the daemon, stopped cleanly by
 *                                SERVICE_CONTROL_STOP / SHUTDOWN
 *   --reload PID                 makes the daemon running as PID reload (in place of SIGHUP)
 * Owns service_ctx, the one service's state (the SCM calls back with no argument). */
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h>
#include <windows.h>

#include "compat_win.h"
#include "signals_win.h"

#define SERVICE_NAME L"luadgramd"

static struct service_ctx {
    SERVICE_STATUS_HANDLE handle;
    SERVICE_STATUS status;
    int argc;
    char **argv;
} service_ctx;

static void service_report(DWORD state, DWORD exit_code)
{
    service_ctx.status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    service_ctx.status.dwCurrentState = state;
    service_ctx.status.dwControlsAccepted =
        state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    service_ctx.status.dwWin32ExitCode = exit_code ? ERROR_SERVICE_SPECIFIC_ERROR : NO_ERROR;
    service_ctx.status.dwServiceSpecificExitCode = exit_code;
    service_ctx.status.dwWaitHint = state == SERVICE_RUNNING ? 0 : 10000;
    SetServiceStatus(service_ctx.handle, &service_ctx.status);
}

static DWORD WINAPI service_control(DWORD control, DWORD type, LPVOID data, LPVOID ctx)
{
    (void)type;
    (void)data;
    (void)ctx;
    switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        service_report(SERVICE_STOP_PENDING, 0);
        stop_signals_win_stop();
        return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

/* A service has no console: its log (stderr) goes to luadgramd-service.log beside the
 * program, appended. */
static void service_log_open(void)
{
    char path[MAX_PATH];
    DWORD n = GetModuleFileNameA(NULL, path, sizeof path);
    char *slash = n ? strrchr(path, '\\') : NULL;
    if (!slash || (size_t)(slash - path) + sizeof "\\luadgramd-service.log" > sizeof path)
        return;
    strcpy(slash, "\\luadgramd-service.log");
    int fd = _open(path, _O_WRONLY | _O_CREAT | _O_APPEND | _O_BINARY, _S_IREAD | _S_IWRITE);
    if (fd < 0)
        return;
    _dup2(fd, 2);
    _close(fd);
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
    (void)argc;
    (void)argv;
    service_ctx.handle = RegisterServiceCtrlHandlerExW(SERVICE_NAME, service_control, NULL);
    if (!service_ctx.handle)
        return;
    service_log_open();
    service_report(SERVICE_RUNNING, 0);
    int rc = luadgramd_main(service_ctx.argc, service_ctx.argv);
    char line[64]; /* on fd 2 itself: the CRT's stderr of a service has no handle */
    int n = snprintf(line, sizeof line, "luadgramd service: exit status %d\n", rc);
    if (n > 0)
        (void)_write(2, line, (unsigned)n);
    service_report(SERVICE_STOPPED, (DWORD)rc);
}

/* argv for luadgramd_main: the program name, then what follows "--service run". */
static char **service_args(int argc, char **argv, int first, int *n)
{
    char **v = calloc((size_t)(argc - first + 2), sizeof *v);
    if (!v)
        return NULL;
    v[0] = argv[0];
    *n = 1;
    for (int i = first; i < argc; i++)
        v[(*n)++] = argv[i];
    return v;
}

static int service_install(int argc, char **argv)
{
    const char *conf = "luadgramd.conf";
    if (argc >= 5 && (strcmp(argv[3], "-c") == 0 || strcmp(argv[3], "--config") == 0))
        conf = argv[4];
    char exe[MAX_PATH], confabs[MAX_PATH], cmd[3 * MAX_PATH];
    if (!GetModuleFileNameA(NULL, exe, sizeof exe) ||
        !GetFullPathNameA(conf, sizeof confabs, confabs, NULL)) {
        fprintf(stderr, "luadgramd: cannot find the program's or the configuration's path\n");
        return 1;
    }
    snprintf(cmd, sizeof cmd, "\"%s\" --service run -c \"%s\"", exe, confabs);
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CREATE_SERVICE);
    if (!scm) {
        fprintf(stderr, "luadgramd: cannot open the Service Control Manager (error %lu)\n",
                (unsigned long)GetLastError());
        return 1;
    }
    SC_HANDLE svc = CreateServiceA(scm, "luadgramd", "luadgramd datagram daemon",
                                   SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
                                   SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL, cmd, NULL, NULL,
                                   NULL, NULL, NULL);
    if (!svc) {
        fprintf(stderr, "luadgramd: cannot create the service (error %lu)\n",
                (unsigned long)GetLastError());
        CloseServiceHandle(scm);
        return 1;
    }
    printf("service luadgramd installed: %s\n", cmd);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return 0;
}

static int service_uninstall(void)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE svc = scm ? OpenServiceW(scm, SERVICE_NAME, DELETE) : NULL;
    int ok = svc && DeleteService(svc);
    if (!ok)
        fprintf(stderr, "luadgramd: cannot remove the service (error %lu)\n",
                (unsigned long)GetLastError());
    else
        printf("service luadgramd removed\n");
    if (svc)
        CloseServiceHandle(svc);
    if (scm)
        CloseServiceHandle(scm);
    return ok ? 0 : 1;
}

static int reload_pid(const char *pid)
{
    wchar_t name[64];
    stop_signals_win_event_name(strtoul(pid, NULL, 10), name, 64);
    HANDLE ev = OpenEventW(EVENT_MODIFY_STATE, FALSE, name);
    if (!ev || !SetEvent(ev)) {
        fprintf(stderr, "luadgramd: no luadgramd running as process %s\n", pid);
        if (ev)
            CloseHandle(ev);
        return 1;
    }
    CloseHandle(ev);
    return 0;
}

int main(int argc, char **argv)
{
    if (win_sockets_start() != 0) {
        fprintf(stderr, "luadgramd: cannot start Winsock\n");
        return 1;
    }
    if (argc >= 3 && strcmp(argv[1], "--reload") == 0)
        return reload_pid(argv[2]);
    if (argc < 2 || strcmp(argv[1], "--service") != 0)
        return luadgramd_main(argc, argv);
    const char *what = argc >= 3 ? argv[2] : "";
    if (strcmp(what, "install") == 0)
        return service_install(argc, argv);
    if (strcmp(what, "uninstall") == 0)
        return service_uninstall();
    if (strcmp(what, "run") != 0) {
        fprintf(stderr, "usage: luadgramd --service install|uninstall|run [-c FILE]\n");
        return 2;
    }
    service_ctx.argv = service_args(argc, argv, 3, &service_ctx.argc);
    if (!service_ctx.argv)
        return 1;
    static SERVICE_TABLE_ENTRYW table[] = {{(LPWSTR)SERVICE_NAME, service_main}, {NULL, NULL}};
    int rc = StartServiceCtrlDispatcherW(table) ? 0 : 1;
    if (rc)
        fprintf(stderr, "luadgramd: --service run is for the Service Control Manager "
                        "(error %lu)\n", (unsigned long)GetLastError());
    free(service_ctx.argv);
    return rc;
}
