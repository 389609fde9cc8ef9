/* daemon: one record per [daemon] section, driven by four timers (lease:
 * acquire poll or renewal; fence: the lease's trust deadline; child: the
 * restart delay or the KILL deadline; checkin: hang detection) and by the
 * master's reaping. The lease is trusted only until (send time of the last
 * successful call) + ttl/2: then the child gets TERM, and KILL at + 2/3 ttl,
 * so it is gone before the lease can lapse and be taken elsewhere.
 * This file runs the child: starting, stopping, check-ins, exits and
 * restarts; the lease calls are in daemon_lease.c, the records and the set
 * API in daemon_set.c. */
#include "daemon.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "backoff.h"
#include "daemon_child.h"
#include "daemon_int.h"
#include "log.h"
#include "process.h"
#include "util.h"

const char *daemon_scope_name(const struct config_daemon *c)
{
	return c->scope == DAEMON_SCOPE_CLUSTER ? "cluster" : "node";
}

bool daemon_is_cluster(const struct daemon *d)
{
	return d->cfg.scope == DAEMON_SCOPE_CLUSTER;
}

static bool daemon_is_wanted(const struct daemon *d)
{
	enum dmode mode = d->set->mode;
	return !d->removed &&
	       (mode == MODE_RUNNING || (mode == MODE_QUIET && !daemon_is_cluster(d)));
}

void daemon_signal(struct daemon *d, int sig)
{
	process_signal_group(d->pid, sig);
}

/* TERM now, KILL `grace` seconds later (at once when grace <= 0). */
void daemon_stop_child(struct daemon *d, enum dnext next, double grace, const char *why)
{
	struct ev_loop *loop = d->set->loop;
	if (d->state == DS_STOPPING) {
		if (next > d->after)
			d->after = next;
		if (!ev_is_active(&d->child_w) || grace >= ev_timer_remaining(loop, &d->child_w))
			return; /* KILL already sent, or due sooner anyway */
	} else {
		d->state = DS_STOPPING;
		d->after = next;
		log_info("stopping daemon", LF_STR("daemon", d->cfg.name),
		         LF_INT("token", d->token), LF_INT("child", d->pid), LF_STR("reason", why));
		daemon_signal(d, SIGTERM);
	}
	ev_timer_stop(loop, &d->checkin_w);
	ev_timer_stop(loop, &d->child_w);
	if (grace <= 0) {
		daemon_signal(d, SIGKILL);
		return;
	}
	ev_timer_set(&d->child_w, grace, 0.0);
	ev_timer_start(loop, &d->child_w);
}

/* The lease is gone, outrun or can no longer be trusted: the child must go
 * at once (lost, outrun) or before the lease could lapse (fence). A lease
 * that may still be ours is released once the child is gone. */
/* ---- check-ins ---------------------------------------------------------- */

static void daemon_close_checkin(struct daemon *d)
{
	ev_timer_stop(d->set->loop, &d->checkin_w);
	if (d->checkin_fd < 0)
		return;
	ev_io_stop(d->set->loop, &d->checkin_io);
	close(d->checkin_fd);
	d->checkin_fd = -1;
}

static void daemon_on_checkin(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon *d = w->data;
	char buf[512];
	ssize_t n;
	(void)revents;
	while ((n = read(d->checkin_fd, buf, sizeof(buf))) > 0)
		if (d->state == DS_RUNNING)
			ev_timer_again(loop, &d->checkin_w);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		/* EOF: the child closed it; only the timer speaks from now on. */
		ev_io_stop(loop, &d->checkin_io);
		close(d->checkin_fd);
		d->checkin_fd = -1;
	}
}

void daemon_on_checkin_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;
	(void)revents;
	ev_timer_stop(loop, t);
	if (d->state != DS_RUNNING)
		return;
	log_warn("daemon hung: no check-in in time", LF_STR("daemon", d->cfg.name),
	         LF_INT("token", d->token), LF_INT("child", d->pid),
	         LF_DBL("checkin_timeout", d->cfg.checkin_timeout));
	d->failed = true;
	daemon_stop_child(d, NEXT_RESTART, d->cfg.stop_timeout, "hung");
}

/* ---- the child ------------------------------------------------------------- */

/* In the forked child, before anything else: drop what the master holds. */
static void daemon_forget_master(void *priv)
{
	struct daemon_set *set = priv;
	daemon_set_close_fds(set);
	set->forget(set->priv);
}

static void daemon_schedule_restart(struct daemon *d, double delay)
{
	d->state = DS_BACKOFF;
	ev_timer_stop(d->set->loop, &d->child_w);
	ev_timer_set(&d->child_w, delay, 0.0);
	ev_timer_start(d->set->loop, &d->child_w);
}

void daemon_spawn(struct daemon *d)
{
	struct daemon_set *set = d->set;
	struct daemon_child x = {
	    .section = &d->cfg,
	    .scope = daemon_scope_name(&d->cfg),
	    .token = daemon_is_cluster(d) ? d->token : 0,
	    .cfg = set->cfg,
	    .plugins = set->plugins,
	    .rfd = -1,
	    .wfd = -1,
	    .master = getpid(),
	    .forget = daemon_forget_master,
	    .priv = set,
	};
	int fds[2];

	if (d->cfg.checkin_timeout > 0) {
		if (pipe2(fds, O_CLOEXEC)) {
			log_error("pipe failed; will retry", LF_STR("daemon", d->cfg.name),
			          LF_ERRNO());
			daemon_schedule_restart(d, BACKOFF_RESPAWN_MIN);
			return;
		}
		x.rfd = fds[0];
		x.wfd = fds[1];
	}
	d->pid = process_spawn(daemon_child_main, &x);
	if (x.wfd >= 0)
		close(x.wfd);
	if (d->pid < 0) {
		log_error("fork failed; will retry", LF_STR("daemon", d->cfg.name), LF_ERRNO());
		d->pid = 0;
		if (x.rfd >= 0)
			close(x.rfd);
		daemon_schedule_restart(d, BACKOFF_RESPAWN_MIN);
		return;
	}
	if (d->started > 0)
		d->restarts++;
	d->state = DS_RUNNING;
	d->started = util_now_mono();
	d->failed = false;
	if (x.rfd >= 0) {
		d->checkin_fd = x.rfd;
		fcntl(x.rfd, F_SETFL, O_NONBLOCK);
		ev_io_init(&d->checkin_io, daemon_on_checkin, x.rfd, EV_READ);
		d->checkin_io.data = d;
		ev_io_start(set->loop, &d->checkin_io);
		ev_timer_set(&d->checkin_w, d->cfg.checkin_timeout, d->cfg.checkin_timeout);
		ev_timer_start(set->loop, &d->checkin_w);
	}
	log_info("daemon started", LF_STR("daemon", d->cfg.name), LF_INT("token", d->token),
	         LF_INT("child", d->pid), LF_STR("scope", daemon_scope_name(&d->cfg)));
}

void daemon_on_child_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;
	(void)loop;
	(void)revents;
	if (d->state == DS_STOPPING && d->pid > 0) {
		log_warn("killing daemon that did not stop in time", LF_STR("daemon", d->cfg.name),
		         LF_INT("token", d->token), LF_INT("child", d->pid));
		daemon_signal(d, SIGKILL);
	} else if (d->state == DS_BACKOFF && daemon_is_wanted(d)) {
		if (daemon_is_cluster(d) && d->token <= 0) {
			d->state = DS_WAITING; /* the lease went while we waited */
			daemon_arm_lease(d);
		} else {
			daemon_spawn(d);
		}
	}
}

/* ---- exits -------------------------------------------------------------- */

/* Records a failure; true when it completes a crash loop. */
static bool daemon_count_failure(struct daemon *d, double lifetime)
{
	double now = util_now_mono();
	unsigned n = DAEMON_CRASH_LOOP_FAILURES;
	if (lifetime >= DAEMON_HEALTHY)
		d->quick = 0;
	d->quick++;
	d->fails[d->nfails++ % n] = now;
	/* The oldest of the last n failures is within the window. */
	return d->nfails >= n && now - d->fails[d->nfails % n] <= DAEMON_CRASH_LOOP_WINDOW;
}

static void daemon_after_failure(struct daemon *d, double lifetime)
{
	bool loop = daemon_count_failure(d, lifetime);
	if (loop && daemon_is_cluster(d)) {
		log_warn("daemon crash loop; handing it to another node",
		         LF_STR("daemon", d->cfg.name), LF_INT("token", d->token),
		         LF_INT("failures", DAEMON_CRASH_LOOP_FAILURES),
		         LF_INT("cooldown", DAEMON_COOLDOWN));
		daemon_release(d, true);
		d->nfails = d->quick = 0;
		d->state = DS_WAITING;
		daemon_arm_lease(d);
		return;
	}
	if (daemon_is_cluster(d) && d->token <= 0) {
		daemon_release(d, false); /* a fenced lease may still be ours */
		d->state = DS_WAITING;
		daemon_arm_lease(d);
		return;
	}
	double delay = backoff_respawn_delay(d->quick, util_random());
	log_warn("daemon restart delayed", LF_STR("daemon", d->cfg.name), LF_INT("token", d->token),
	         LF_INT("failures", d->quick), LF_DBL("delay", delay), LF_BOOL("crash_loop", loop));
	daemon_schedule_restart(d, delay);
}

/* A changed section takes effect once the old child is gone. */
void daemon_apply_pending(struct daemon *d)
{
	if (!d->pending)
		return;
	bool was_cluster = daemon_is_cluster(d);
	daemon_section_clear(&d->cfg);
	d->cfg = *d->pending;
	free(d->pending);
	d->pending = NULL;
	if (was_cluster && !daemon_is_cluster(d))
		daemon_release(d, false);
}

void daemon_exited(struct daemon *d, int status)
{
	double lifetime = util_now_mono() - d->started;
	enum dnext next = d->state == DS_STOPPING ? d->after : NEXT_RESTART;
	bool failed = d->state == DS_RUNNING || d->failed;
	char how[64];

	process_describe_status(status, how, sizeof(how));
	log_at(failed ? LOG_WARN : LOG_INFO, "daemon exited", LF_STR("daemon", d->cfg.name),
	       LF_INT("token", d->token ? d->token : d->stale), LF_INT("child", d->pid),
	       LF_STR("status", how), LF_DBL("lifetime", lifetime));
	d->pid = 0;
	daemon_close_checkin(d);
	ev_timer_stop(d->set->loop, &d->child_w);
	if (next == NEXT_RESTART && !daemon_is_wanted(d))
		next = NEXT_OFF;
	switch (next) {
	case NEXT_RESTART:
		daemon_apply_pending(d);
		if (failed) {
			daemon_after_failure(d, lifetime);
		} else {
			d->state = DS_OFF;
			daemon_begin(d);
		}
		break;
	case NEXT_CONTEND:
		daemon_release(d, false);
		daemon_apply_pending(d); /* a reload may have come during the stop */
		d->state = DS_OFF;
		daemon_begin(d);
		break;
	case NEXT_OFF:
		daemon_release(d, false);
		daemon_apply_pending(d);
		d->state = DS_OFF;
		break;
	case NEXT_REMOVE:
		daemon_release(d, false);
		daemon_remove(d);
		break;
	}
}

/* From off (or a restart that keeps the lease): run or contend. */
void daemon_begin(struct daemon *d)
{
	if (!daemon_is_wanted(d))
		return;
	if (!daemon_is_cluster(d) || d->token > 0) {
		daemon_spawn(d);
		return;
	}
	d->state = DS_WAITING;
	ev_timer_stop(d->set->loop, &d->lease_w);
	/* The first attempt soon after start, spread over the nodes. */
	ev_timer_set(&d->lease_w, 0.1 + 0.2 * d->set->cfg->daemon_acquire * util_random(), 0.0);
	ev_timer_start(d->set->loop, &d->lease_w);
}

/* Stops d for good (or for removal): the child if any, else the lease. */
void daemon_wind_down(struct daemon *d, enum dnext next, const char *why)
{
	if (d->pid > 0) {
		daemon_stop_child(d, next, d->cfg.stop_timeout, why);
		return;
	}
	ev_timer_stop(d->set->loop, &d->child_w);
	daemon_release(d, false);
	d->state = DS_OFF;
	if (next == NEXT_REMOVE)
		daemon_remove(d);
}
