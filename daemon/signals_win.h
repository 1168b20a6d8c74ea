/* daemon/signals_win.h: what main_win.c (the service, --reload) asks of signals_win.c. */
#ifndef LUADGRAM_SIGNALS_WIN_H
#define LUADGRAM_SIGNALS_WIN_H

#include <stddef.h>
#include <wchar.h>

/* Stops the running daemon's main loop (as Ctrl-C does); nothing before it runs. */
void stop_signals_win_stop(void);

/* The name of the event that reloads the daemon running as process pid. */
void stop_signals_win_event_name(unsigned long pid, wchar_t *buf, size_t n);

#endif
