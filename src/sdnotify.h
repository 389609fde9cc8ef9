/* sdnotify: the systemd notification protocol for a Type=notify service
 * (READY, RELOADING, STOPPING, STATUS) and the watchdog pings, through
 * libsystemd. Without NOTIFY_SOCKET every call does nothing. */
#ifndef FORQ_SDNOTIFY_H
#define FORQ_SDNOTIFY_H

#include <ev.h>

struct sdnotify;

/* NULL when systemd is not listening (no NOTIFY_SOCKET). With WATCHDOG_USEC
 * meant for this pid, pings WATCHDOG=1 from loop at half that interval, so
 * the pings stop when the loop stops turning. Caller frees. */
struct sdnotify *sdnotify_new(struct ev_loop *loop);
void sdnotify_free(struct sdnotify *n);
/* Each sends one message; n may be NULL. */
void sdnotify_ready(struct sdnotify *n);
void sdnotify_reloading(struct sdnotify *n);
void sdnotify_stopping(struct sdnotify *n);
/* STATUS=status, sent only when it differs from the last one sent. */
void sdnotify_status(struct sdnotify *n, const char *status);
/* In a forked child: forget the socket and watchdog, so workers and the
 * handlers they start never talk to systemd for the master. */
void sdnotify_forget_in_child(struct sdnotify *n, struct ev_loop *loop);

#endif
