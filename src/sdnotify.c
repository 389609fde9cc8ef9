/* sdnotify: messages to systemd with sd_notify(3). The environment keeps
 * NOTIFY_SOCKET while the master runs (sd_notify reads it each time) and
 * every forked child drops it at once, as sd_notify(unset_environment=1)
 * would for a process that sends only once. */
#include "sdnotify.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"
#include "util.h"

struct sdnotify {
	struct ev_loop *loop;
	ev_timer watchdog_w;
	char status[256]; /* last STATUS= sent */
	bool warned;
};

static void sdnotify_send(struct sdnotify *n, const char *msg)
{
	int rc = sd_notify(0, msg);
	if (rc <= 0 && !n->warned) {
		/* A full or vanished socket must not flood the log every second. */
		n->warned = true;
		log_warn("cannot notify systemd", LF_STR("message", msg),
			 LF_STR("error", rc < 0 ? strerror(-rc) : "no NOTIFY_SOCKET"));
	}
}

static void sdnotify_on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sdnotify *n = t->data;
	(void)loop;
	(void)revents;
	sdnotify_send(n, "WATCHDOG=1");
}

struct sdnotify *sdnotify_new(struct ev_loop *loop)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	uint64_t usec = 0;
	if (!sock || !*sock)
		return NULL;
	struct sdnotify *n = xcalloc(1, sizeof(*n));
	n->loop = loop;
	ev_timer_init(&n->watchdog_w, sdnotify_on_watchdog, 0.0, 0.0);
	n->watchdog_w.data = n;
	/* > 0 only when WATCHDOG_PID is unset or names us. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		double every = (double)usec / 2e6;
		ev_timer_set(&n->watchdog_w, every, every);
		ev_timer_start(loop, &n->watchdog_w);
		log_info("systemd watchdog on", LF_DBL("ping_every", every));
	}
	return n;
}

void sdnotify_free(struct sdnotify *n)
{
	if (!n)
		return;
	if (n->loop)
		ev_timer_stop(n->loop, &n->watchdog_w);
	free(n);
}

void sdnotify_ready(struct sdnotify *n)
{
	if (n)
		sdnotify_send(n, "READY=1");
}

void sdnotify_reloading(struct sdnotify *n)
{
	struct timespec ts;
	char msg[64];
	if (!n)
		return;
	/* systemd 253's Type=notify-reload wants the time of the request. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	sdnotify_send(n, msg);
}

void sdnotify_stopping(struct sdnotify *n)
{
	if (n)
		sdnotify_send(n, "STOPPING=1");
}

void sdnotify_status(struct sdnotify *n, const char *status)
{
	char msg[sizeof(n->status) + 8];
	if (!n || !strcmp(n->status, status))
		return;
	snprintf(n->status, sizeof(n->status), "%s", status);
	snprintf(msg, sizeof(msg), "STATUS=%s", n->status);
	sdnotify_send(n, msg);
}

void sdnotify_forget_in_child(struct sdnotify *n, struct ev_loop *loop)
{
	if (n && loop)
		ev_timer_stop(loop, &n->watchdog_w);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}
