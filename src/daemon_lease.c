/* daemon_lease: a cluster daemon's lease forq:daemon:<name> through
 * daemon.lua: acquire, renew, release and cooldown calls, their answers, and
 * the fence that stops the child before an unrenewed lease could lapse.
 * Separate from daemon.c so the Redis side reads apart from the process side. */
#include <ev.h>
#include <stdbool.h>
#include <stdio.h>

#include "backoff.h"
#include "daemon.h"
#include "daemon_int.h"
#include "keys.h"
#include "log.h"
#include "rds.h"
#include "util.h"

#define DAEMON_RENEW_RETRY 1.0 /* seconds before retrying a renewal that got no answer */

static double daemon_renew_interval(const struct daemon_set *set)
{
	double third = set->cfg->daemon_ttl / 3;
	return set->cfg->daemon_renew < third ? set->cfg->daemon_renew : third;
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

void daemon_arm_lease(struct daemon *d)
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
void daemon_release(struct daemon *d, bool cooldown)
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

void daemon_on_fence(struct ev_loop *loop, ev_timer *t, int revents)
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

void daemon_on_lease_timer(struct ev_loop *loop, ev_timer *t, int revents)
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
