/* daemon: one record per [daemon] section, driven by four timers (lease:
 * acquire poll or renewal; fence: the lease's trust deadline; child: the
 * restart delay or the KILL deadline; checkin: hang detection) and by the
 * master's reaping. The lease is trusted only until (send time of the last
 * successful call) + ttl/2: then the child gets TERM, and KILL at + 2/3 ttl,
 * so it is gone before the lease can lapse and be taken elsewhere. */
#include "daemon.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "daemon_child.h"
#include "keys.h"
#include "log.h"
#include "process.h"
#include "util.h"

#define DAEMON_RENEW_RETRY 1.0 /* seconds before retrying a renewal that got no answer */

enum dstate { DS_OFF, DS_WAITING, DS_RUNNING, DS_STOPPING, DS_BACKOFF };
/* What a stopping daemon does once its child is gone; a later request
 * only ever raises it (a removal beats a restart). */
enum dnext { NEXT_RESTART, NEXT_CONTEND, NEXT_OFF, NEXT_REMOVE };
enum dmode { MODE_IDLE, MODE_RUNNING, MODE_QUIET, MODE_STOPPING };

struct daemon {
	struct daemon_set *set;
	struct daemon *next;
	struct config_daemon cfg;      /* own copy */
	struct config_daemon *pending; /* changed section, applied when the child is gone */
	char *key, *epoch_key, *cooldown_key, *runid_key, *settle_key;
	enum dstate state;
	enum dnext after; /* while stopping */
	bool failed;      /* while stopping: the stop counts as a failure (hung) */
	pid_t pid;
	double started;    /* monotonic */
	long long token;   /* > 0 while this node trusts its lease */
	long long stale;   /* a token given up locally but maybe still in Redis */
	long long seen;    /* the highest token this node has held or seen: tokens
	                      handed out later must be above it, whatever Redis lost */
	double lease_sent; /* monotonic send time of the pending lease call */
	double lease_ok;   /* ... of the last successful one */
	bool lease_busy;   /* an acquire or renew call is in flight */
	bool cooling;      /* last acquire was refused for our cooldown */
	bool settling;     /* ... because Redis lost or changed its data */
	bool renew_failed; /* the last renewal got no answer: retry soon, not in renew s */
	bool removed;      /* off the list; freed once no callback is due */
	int calls;         /* callbacks still due */
	int checkin_fd;    /* read end, -1 when none */
	unsigned quick;    /* failures since the last healthy run: backoff step */
	unsigned restarts;
	double fails[DAEMON_CRASH_LOOP_FAILURES]; /* monotonic times, ring */
	unsigned nfails;
	ev_timer lease_w, fence_w, child_w, checkin_w;
	ev_io checkin_io;
};

struct daemon_set {
	struct ev_loop *loop;
	struct rds_async *rds;
	char *identity;
	const struct config *cfg;
	struct plugin_set *plugins;
	daemon_forget_fn forget;
	void *priv;
	enum dmode mode;
	struct daemon *list;
};

static void daemon_spawn(struct daemon *d);
static void daemon_begin(struct daemon *d);

static const char *daemon_scope_name(const struct config_daemon *c)
{
	return c->scope == DAEMON_SCOPE_CLUSTER ? "cluster" : "node";
}

static bool daemon_is_cluster(const struct daemon *d)
{
	return d->cfg.scope == DAEMON_SCOPE_CLUSTER;
}

static bool daemon_is_wanted(const struct daemon *d)
{
	enum dmode mode = d->set->mode;
	return !d->removed &&
	       (mode == MODE_RUNNING || (mode == MODE_QUIET && !daemon_is_cluster(d)));
}

static double daemon_renew_interval(const struct daemon_set *set)
{
	double third = set->cfg->daemon_ttl / 3;
	return set->cfg->daemon_renew < third ? set->cfg->daemon_renew : third;
}

/* ---- section copies ------------------------------------------------- */

static char **argv_dup(char *const *argv)
{
	size_t n = 0;
	while (argv && argv[n])
		n++;
	if (!argv)
		return NULL;
	char **out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(argv[i]);
	return out;
}

static void section_copy(struct config_daemon *dst, const struct config_daemon *src)
{
	*dst = *src;
	dst->name = xstrdup(src->name);
	dst->argv = argv_dup(src->argv);
	dst->plugin = src->plugin ? xstrdup(src->plugin) : NULL;
	dst->ruby = src->ruby ? xstrdup(src->ruby) : NULL;
	dst->args = src->args ? xstrdup(src->args) : NULL;
}

static void section_clear(struct config_daemon *c)
{
	free(c->name);
	config_free_argv(c->argv);
	free(c->plugin);
	free(c->ruby);
	free(c->args);
}

static bool section_equal(const struct config_daemon *a, const struct config_daemon *b)
{
	size_t i = 0;
	if (a->scope != b->scope || a->checkin_timeout != b->checkin_timeout ||
	    a->stop_timeout != b->stop_timeout || !a->plugin != !b->plugin || !a->argv != !b->argv)
		return false;
	if (a->plugin && strcmp(a->plugin, b->plugin))
		return false;
	if (!a->ruby != !b->ruby || (a->ruby && strcmp(a->ruby, b->ruby)) ||
	    strcmp(a->args ? a->args : "[]", b->args ? b->args : "[]"))
		return false;
	for (; a->argv && a->argv[i] && b->argv[i]; i++)
		if (strcmp(a->argv[i], b->argv[i]))
			return false;
	return !a->argv || (!a->argv[i] && !b->argv[i]);
}

/* ---- records ---------------------------------------------------------- */

static struct daemon *daemon_new(struct daemon_set *set, const struct config_daemon *c);

static void daemon_destroy(struct daemon *d)
{
	struct ev_loop *loop = d->set->loop;
	ev_timer_stop(loop, &d->lease_w);
	ev_timer_stop(loop, &d->fence_w);
	ev_timer_stop(loop, &d->child_w);
	ev_timer_stop(loop, &d->checkin_w);
	if (d->checkin_fd >= 0) {
		ev_io_stop(loop, &d->checkin_io);
		close(d->checkin_fd);
	}
	if (d->pending) {
		section_clear(d->pending);
		free(d->pending);
	}
	section_clear(&d->cfg);
	free(d->key);
	free(d->epoch_key);
	free(d->cooldown_key);
	free(d->runid_key);
	free(d->settle_key);
	free(d);
}

/* Takes d off the list; it is freed now or by its last due callback. */
static void daemon_remove(struct daemon *d)
{
	for (struct daemon **p = &d->set->list; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	d->removed = true;
	if (!d->calls)
		daemon_destroy(d);
}

/* ---- the lease ------------------------------------------------------------ */

/* One daemon.lua call; 0 when sent (then cb runs exactly once). token is
 * the one renewed or released, or for an acquire the highest seen. */
static int daemon_lease_call(struct daemon *d, const char *op, long long token, rds_cb cb)
{
	char tok[32], ttl[32], cool[32];
	snprintf(tok, sizeof(tok), "%lld", token);
	snprintf(ttl, sizeof(ttl), "%ld", (long)(d->set->cfg->daemon_ttl * 1000));
	snprintf(cool, sizeof(cool), "%d", DAEMON_COOLDOWN);
	const char *argv[] = {d->key,      d->epoch_key,     d->cooldown_key,
	                      KEY_DAEMONS, d->runid_key,     d->settle_key,
	                      op,          d->set->identity, tok,
	                      ttl,         d->cfg.name,      cool};
	if (rds_async_eval(d->set->rds, cb, d, LUA_DAEMON, 6, ARRAY_SIZE(argv), argv, NULL))
		return -1;
	d->calls++;
	return 0;
}

/* Common head of every callback: false when d must not be touched further. */
static bool daemon_call_done(struct daemon *d)
{
	d->calls--;
	if (d->removed) {
		if (!d->calls)
			daemon_destroy(d);
		return false;
	}
	return true;
}

static void daemon_on_released(struct rds_reply *x, void *priv)
{
	(void)x;
	daemon_call_done(priv);
}

static void daemon_arm_lease(struct daemon *d)
{
	struct daemon_set *set = d->set;
	double after;
	ev_timer_stop(set->loop, &d->lease_w);
	if (d->token > 0 && d->renew_failed)
		after = daemon_renew_interval(set) < DAEMON_RENEW_RETRY ? daemon_renew_interval(set)
									   : DAEMON_RENEW_RETRY;
	else if (d->token > 0)
		after = daemon_renew_interval(set);
	else if (d->state == DS_WAITING)
		after =
		    set->cfg->daemon_acquire * (1.0 + BACKOFF_JITTER * (2.0 * util_random() - 1.0));
	else
		return;
	ev_timer_set(&d->lease_w, after, 0.0);
	ev_timer_start(set->loop, &d->lease_w);
}

static void daemon_arm_fence(struct daemon *d)
{
	double at = d->lease_ok + d->set->cfg->daemon_ttl / 2 - util_now_mono();
	ev_timer_stop(d->set->loop, &d->fence_w);
	ev_timer_set(&d->fence_w, at > 0 ? at : 0.0, 0.0);
	ev_timer_start(d->set->loop, &d->fence_w);
}

/* Gives the lease up (compare-and-delete), optionally setting this node's
 * cooldown, and stops renewing. */
static void daemon_release(struct daemon *d, bool cooldown)
{
	long long token = d->token ? d->token : d->stale;
	ev_timer_stop(d->set->loop, &d->lease_w);
	ev_timer_stop(d->set->loop, &d->fence_w);
	if (token > 0 || cooldown) {
		if (daemon_lease_call(d, cooldown ? "cooldown" : "release", token,
		                      daemon_on_released))
			log_warn("daemon lease not released (redis is away); it expires by itself",
			         LF_STR("daemon", d->cfg.name), LF_INT("token", token));
		else if (token > 0)
			log_info("daemon lease released", LF_STR("daemon", d->cfg.name),
			         LF_INT("token", token));
	}
	d->token = d->stale = 0;
}

static void daemon_signal(struct daemon *d, int sig)
{
	process_signal_group(d->pid, sig);
}

/* TERM now, KILL `grace` seconds later (at once when grace <= 0). */
static void daemon_stop_child(struct daemon *d, enum dnext next, double grace, const char *why)
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
static void daemon_drop_lease(struct daemon *d, bool ours, double grace, const char *why)
{
	ev_timer_stop(d->set->loop, &d->lease_w);
	ev_timer_stop(d->set->loop, &d->fence_w);
	if (d->pid > 0)
		daemon_stop_child(d, NEXT_CONTEND, grace, why); /* logs the token */
	d->stale = ours ? d->token : 0;
	d->token = 0;
	if (d->pid <= 0 && d->state == DS_BACKOFF) {
		ev_timer_stop(d->set->loop, &d->child_w);
		if (ours)
			daemon_release(d, false);
		d->state = DS_WAITING;
		daemon_arm_lease(d);
	}
}

static void daemon_on_fence(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;
	(void)loop;
	(void)revents;
	if (d->token <= 0)
		return;
	double kill_in = d->lease_ok + d->set->cfg->daemon_ttl * 2 / 3 - util_now_mono();
	log_warn("daemon lease not renewed in time; stopping the daemon",
	         LF_STR("daemon", d->cfg.name), LF_INT("token", d->token),
	         LF_DBL("kill_in", kill_in > 0 ? kill_in : 0));
	if (kill_in > d->cfg.stop_timeout)
		kill_in = d->cfg.stop_timeout;
	daemon_drop_lease(d, true, kill_in, "lease not renewed");
}

static void daemon_on_renewed(struct rds_reply *x, void *priv)
{
	struct daemon *d = priv;
	if (!daemon_call_done(d))
		return;
	d->lease_busy = false;
	if (d->token <= 0)
		return; /* given up meanwhile */
	if (!x || rds_type(x) == RDS_ERR) {
		/* One lost answer must not cost a healthy daemon its life: try
		 * again within a second; the fence still decides in the end. */
		if (x)
			log_warn("daemon lease renewal failed", LF_STR("daemon", d->cfg.name),
				 LF_STR("error", rds_str(x, NULL)));
		d->renew_failed = true;
		daemon_arm_lease(d);
	} else if (rds_type(x) == RDS_INT && rds_int(x) == d->token) {
		d->renew_failed = false;
		d->lease_ok = d->lease_sent;
		daemon_arm_fence(d);
	} else if (rds_type(x) == RDS_INT && rds_int(x) == -1) {
		/* A higher token was handed out (Redis lost data, and a node
		 * that knew of it raised the epoch): ours must not run beside
		 * or after it; the lease is given back once the child is gone. */
		log_warn("daemon lease outrun by a higher token", LF_STR("daemon", d->cfg.name),
		         LF_INT("token", d->token));
		daemon_drop_lease(d, true, 0.0, "lease outrun");
	} else {
		log_warn("daemon lease lost", LF_STR("daemon", d->cfg.name),
		         LF_INT("token", d->token),
		         LF_STR("reason", "another node holds it or redis lost it"));
		daemon_drop_lease(d, false, 0.0, "lease lost");
	}
}

/* An acquire's answer {token, 0 (held), -2 (cooldown) or -3 (settling);
 * the epoch}, 0 when there is none. The epoch raises what this node has
 * seen, the floor of its later acquires. */
static long long daemon_acquire_result(struct daemon *d, struct rds_reply *x)
{
	if (!x || rds_type(x) != RDS_ARR || rds_len(x) != 2) {
		if (x && rds_type(x) == RDS_ERR)
			log_warn("daemon lease call failed", LF_STR("daemon", d->cfg.name),
			         LF_STR("error", rds_str(x, NULL)));
		return 0;
	}
	long long epoch = rds_int(rds_elem(x, 1));
	if (epoch > d->seen)
		d->seen = epoch;
	return rds_int(rds_elem(x, 0));
}

static void daemon_note_refusal(struct daemon *d, long long r)
{
	if (r == -2 && !d->cooling)
		log_info("daemon in cooldown on this node; not contending",
		         LF_STR("daemon", d->cfg.name));
	if (r == -3 && !d->settling)
		log_info("redis is new, restarted or failed over: nobody takes the daemon "
		         "for up to daemon_ttl, until any holder from before has stopped",
		         LF_STR("daemon", d->cfg.name), LF_INT("seen", d->seen));
	d->cooling = r == -2;
	d->settling = r == -3;
}

static void daemon_on_acquired(struct rds_reply *x, void *priv)
{
	struct daemon *d = priv;
	long long r = daemon_acquire_result(d, x);
	if (d->removed && r > 0) {
		/* removed by a reload while the acquire was on its way: give
		 * back what Redis granted instead of leaving it to its TTL */
		d->stale = r;
		daemon_release(d, false);
	}
	if (!daemon_call_done(d))
		return;
	d->lease_busy = false;
	daemon_note_refusal(d, r);
	if (r > 0) {
		d->token = r;
		d->lease_ok = d->lease_sent;
		if (d->state != DS_WAITING) { /* stopped or quiet meanwhile */
			daemon_release(d, false);
			return;
		}
		log_info("daemon lease acquired", LF_STR("daemon", d->cfg.name),
		         LF_INT("token", r));
		daemon_arm_fence(d);
		daemon_spawn(d);
	}
	daemon_arm_lease(d);
}

static void daemon_on_lease_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;
	(void)loop;
	(void)revents;
	if (!d->lease_busy && (d->token > 0 || d->state == DS_WAITING)) {
		bool renew = d->token > 0;
		d->lease_sent = util_now_mono();
		d->lease_busy =
		    !daemon_lease_call(d, renew ? "renew" : "acquire", renew ? d->token : d->seen,
		                       renew ? daemon_on_renewed : daemon_on_acquired);
		d->renew_failed = renew && !d->lease_busy;
	}
	daemon_arm_lease(d);
}

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

static void daemon_on_checkin_timeout(struct ev_loop *loop, ev_timer *t, int revents)
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

static void daemon_spawn(struct daemon *d)
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

static void daemon_on_child_timer(struct ev_loop *loop, ev_timer *t, int revents)
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
static void daemon_apply_pending(struct daemon *d)
{
	if (!d->pending)
		return;
	bool was_cluster = daemon_is_cluster(d);
	section_clear(&d->cfg);
	d->cfg = *d->pending;
	free(d->pending);
	d->pending = NULL;
	if (was_cluster && !daemon_is_cluster(d))
		daemon_release(d, false);
}

static void daemon_exited(struct daemon *d, int status)
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
static void daemon_begin(struct daemon *d)
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
static void daemon_wind_down(struct daemon *d, enum dnext next, const char *why)
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

/* ---- the set ------------------------------------------------------------ */

static struct daemon *daemon_new(struct daemon_set *set, const struct config_daemon *c)
{
	struct daemon *d = xcalloc(1, sizeof(*d));
	d->set = set;
	section_copy(&d->cfg, c);
	d->key = keys_daemon(c->name);
	d->epoch_key = keys_daemon_epoch(c->name);
	d->cooldown_key = keys_daemon_cooldown(c->name, set->identity);
	d->runid_key = keys_daemon_runid(c->name);
	d->settle_key = keys_daemon_settle(c->name);
	d->checkin_fd = -1;
	ev_timer_init(&d->lease_w, daemon_on_lease_timer, 0.0, 0.0);
	ev_timer_init(&d->fence_w, daemon_on_fence, 0.0, 0.0);
	ev_timer_init(&d->child_w, daemon_on_child_timer, 0.0, 0.0);
	ev_timer_init(&d->checkin_w, daemon_on_checkin_timeout, 0.0, 0.0);
	d->lease_w.data = d->fence_w.data = d->child_w.data = d->checkin_w.data = d;
	d->next = set->list;
	set->list = d;
	return d;
}

struct daemon_set *daemon_set_new(struct ev_loop *loop, struct rds_async *rds, const char *identity,
                                  const struct config *cfg, struct plugin_set *plugins,
                                  daemon_forget_fn forget, void *priv)
{
	struct daemon_set *set = xcalloc(1, sizeof(*set));
	set->loop = loop;
	set->rds = rds;
	set->identity = xstrdup(identity);
	set->cfg = cfg;
	set->plugins = plugins;
	set->forget = forget;
	set->priv = priv;
	for (size_t i = 0; i < cfg->ndaemons; i++)
		daemon_new(set, &cfg->daemons[i]);
	return set;
}

void daemon_set_free(struct daemon_set *set)
{
	if (!set)
		return;
	while (set->list) {
		struct daemon *d = set->list;
		set->list = d->next;
		daemon_destroy(d);
	}
	free(set->identity);
	free(set);
}

static bool has_script(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nplugins; i++)
		if (!plugin_is_shared_object(cfg->plugins[i]))
			return true;
	return false;
}

int daemon_set_check(const struct config *cfg, bool loaded, const struct plugin_set *plugins,
		     char *err, size_t errlen)
{
	const char *path = cfg->path ? cfg->path : "(config)";
	void *user;
	for (size_t i = 0; i < cfg->ndaemons; i++) {
		const struct config_daemon *c = &cfg->daemons[i];
		if (c->ruby && !has_script(cfg)) {
			util_seterr(err, errlen,
				    "%s:%d: [daemon \"%s\"]: ruby = %s needs a Ruby app: "
				    "-r app.rb or -r RAILS_ROOT",
				    path, c->line, c->name, c->ruby);
			return -1;
		}
		if (loaded && c->plugin && !plugin_set_find_daemon(plugins, c->plugin, &user)) {
			util_seterr(
			    err, errlen,
			    "%s:%d: [daemon \"%s\"]: no plugin registered the daemon entry '%s'",
			    path, c->line, c->name, c->plugin);
			return -1;
		}
	}
	return 0;
}

void daemon_set_start(struct daemon_set *set)
{
	set->mode = MODE_RUNNING;
	for (struct daemon *d = set->list; d; d = d->next)
		daemon_begin(d);
}

void daemon_set_quiet(struct daemon_set *set)
{
	if (set->mode != MODE_RUNNING)
		return;
	set->mode = MODE_QUIET;
	for (struct daemon *d = set->list; d; d = d->next)
		if (daemon_is_cluster(d))
			daemon_wind_down(d, NEXT_OFF, "quiet");
}

void daemon_set_stop(struct daemon_set *set)
{
	struct daemon *next;
	set->mode = MODE_STOPPING;
	for (struct daemon *d = set->list; d; d = next) {
		next = d->next;
		daemon_wind_down(d, NEXT_OFF, "stop");
	}
}

void daemon_set_kill(struct daemon_set *set)
{
	for (struct daemon *d = set->list; d; d = d->next)
		if (d->pid > 0) {
			log_warn("killing daemon", LF_STR("daemon", d->cfg.name),
			         LF_INT("child", d->pid));
			daemon_signal(d, SIGKILL);
		}
}

bool daemon_set_is_idle(const struct daemon_set *set)
{
	for (const struct daemon *d = set->list; d; d = d->next)
		if (d->pid > 0)
			return false;
	return true;
}

bool daemon_set_reap(struct daemon_set *set, pid_t pid, int status)
{
	for (struct daemon *d = set->list; d; d = d->next)
		if (d->pid == pid) {
			daemon_exited(d, status);
			return true;
		}
	return false;
}

static const struct config_daemon *find_section(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ndaemons; i++)
		if (!strcmp(cfg->daemons[i].name, name))
			return &cfg->daemons[i];
	return NULL;
}

static void daemon_change(struct daemon *d, const struct config_daemon *c)
{
	if (d->pending) {
		section_clear(d->pending);
		free(d->pending);
	}
	d->pending = xcalloc(1, sizeof(*d->pending));
	section_copy(d->pending, c);
	if (d->pid > 0) {
		daemon_stop_child(d, NEXT_RESTART, d->cfg.stop_timeout, "configuration changed");
		return;
	}
	daemon_apply_pending(d);
	if (d->state == DS_WAITING && !daemon_is_cluster(d)) {
		ev_timer_stop(d->set->loop, &d->lease_w);
		d->state = DS_OFF;
		daemon_begin(d);
	} else if (d->state == DS_OFF) {
		daemon_begin(d);
	}
}

void daemon_set_reconfigure(struct daemon_set *set, const struct config *cfg)
{
	struct daemon *next;
	set->cfg = cfg;
	for (struct daemon *d = set->list; d; d = next) {
		const struct config_daemon *c = find_section(cfg, d->cfg.name);
		next = d->next;
		if (!c) {
			log_info("daemon removed from the configuration",
			         LF_STR("daemon", d->cfg.name));
			daemon_wind_down(d, NEXT_REMOVE, "removed");
		} else if (d->state == DS_STOPPING && d->after == NEXT_REMOVE) {
			/* back before its removal was over: it restarts instead */
			log_info("daemon back in the configuration", LF_STR("daemon", d->cfg.name));
			d->after = NEXT_RESTART;
			if (!section_equal(&d->cfg, c)) {
				if (d->pending) {
					section_clear(d->pending);
					free(d->pending);
				}
				d->pending = xcalloc(1, sizeof(*d->pending));
				section_copy(d->pending, c);
			}
		} else if (!section_equal(&d->cfg, c) ||
		           (d->pending && !section_equal(d->pending, c))) {
			log_info("daemon configuration changed", LF_STR("daemon", d->cfg.name));
			daemon_change(d, c);
		}
	}
	for (size_t i = 0; i < cfg->ndaemons; i++) {
		bool known = false;
		for (struct daemon *d = set->list; d; d = d->next)
			known |= !strcmp(d->cfg.name, cfg->daemons[i].name);
		if (!known) {
			log_info("daemon added to the configuration",
			         LF_STR("daemon", cfg->daemons[i].name));
			daemon_begin(daemon_new(set, &cfg->daemons[i]));
		}
	}
}

void daemon_set_dump(const struct daemon_set *set)
{
	static const char *const names[] = {"off", "waiting", "running", "stopping", "backoff"};
	double now = util_now_mono();
	for (const struct daemon *d = set->list; d; d = d->next)
		log_info("daemon", LF_STR("daemon", d->cfg.name),
		         LF_STR("scope", daemon_scope_name(&d->cfg)),
		         LF_STR("state", d->cooling && d->state == DS_WAITING ? "cooldown"
		                                                              : names[d->state]),
		         LF_INT("child", d->pid), LF_INT("token", d->token),
		         LF_INT("restarts", d->restarts),
		         LF_DBL("uptime", d->pid > 0 ? now - d->started : 0.0));
}

void daemon_set_close_fds(struct daemon_set *set)
{
	for (struct daemon *d = set->list; d; d = d->next)
		if (d->checkin_fd >= 0)
			close(d->checkin_fd);
}

void daemon_set_each(const struct daemon_set *set, daemon_each_fn fn, void *priv)
{
	for (const struct daemon *d = set->list; d; d = d->next)
		fn(priv, d->cfg.name, d->state == DS_RUNNING && d->pid > 0);
}
