/* leader: one timer. A follower tries every LEADER_POLL seconds, the leader
 * renews every `renew` seconds; both are the same script call. The lease is
 * trusted only until (send time of the last successful call) + ttl - margin:
 * past that the leader demotes itself even if Redis never said no. */
#include "leader.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "util.h"

struct leader {
	struct ev_loop *loop;
	struct rds_async *rds;
	char *identity;
	double ttl, renew;
	leader_change_fn on_change;
	void *priv;
	ev_timer w;
	bool in_flight, resigned;
	double sent_at;      /* monotonic time the pending call was sent */
	double valid_until;  /* monotonic: the lease may be trusted until then */
	long long epoch;     /* > 0 while leading */
	char lease[400];
};

static void leader_demote(struct leader *l, const char *why)
{
	if (!l->epoch)
		return;
	log_warn("leadership lost", LF_STR("reason", why), LF_INT("epoch", l->epoch));
	l->epoch = 0;
	l->lease[0] = '\0';
	l->on_change(l->priv, NULL);
}

static void leader_arm(struct leader *l)
{
	ev_timer_stop(l->loop, &l->w);
	ev_timer_set(&l->w, l->epoch ? l->renew : LEADER_POLL, 0.0);
	ev_timer_start(l->loop, &l->w);
}

static void leader_on_reply(struct rds_reply *x, void *priv)
{
	struct leader *l = priv;
	l->in_flight = false;
	if (l->resigned)
		return;
	long long epoch = x && rds_type(x) == RDS_INT ? rds_int(x) : -1;
	if (epoch > 0) {
		/* Redis set or extended the lease when it ran the call, which was
		 * after we sent it: counting from the send is the safe side. */
		l->valid_until = l->sent_at + l->ttl * 2 / 3;
		if (epoch != l->epoch) {
			l->epoch = epoch;
			snprintf(l->lease, sizeof(l->lease), "%s|%lld", l->identity, epoch);
			log_info("became leader", LF_INT("epoch", epoch));
			l->on_change(l->priv, l->lease);
		}
	} else if (epoch == 0) {
		leader_demote(l, "another node holds the lease");
	} else if (x && rds_type(x) == RDS_ERR) {
		log_warn("leader lease call failed", LF_STR("error", rds_str(x, NULL)));
	}
	leader_arm(l);
}

static void leader_call(struct leader *l, bool release, rds_cb cb)
{
	char ttl[32];
	snprintf(ttl, sizeof(ttl), "%ld", (long)(l->ttl * 1000));
	const char *argv[] = {KEY_LEADER, KEY_LEADER_EPOCH, l->identity, ttl,
			      release ? "1" : "0"};
	l->sent_at = util_now_mono();
	if (!rds_async_eval(l->rds, cb, l, LUA_LEADER, 2, 5, argv, NULL))
		l->in_flight = !release;
}

static void leader_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct leader *l = t->data;
	(void)loop;
	(void)revents;
	if (l->resigned)
		return;
	if (l->epoch && util_now_mono() > l->valid_until)
		leader_demote(l, "the lease could not be renewed in time");
	if (!l->in_flight && rds_async_is_up(l->rds))
		leader_call(l, false, leader_on_reply);
	leader_arm(l);
}

struct leader *leader_new(struct ev_loop *loop, struct rds_async *rds, const char *identity,
			  double ttl, double renew, leader_change_fn on_change, void *priv)
{
	struct leader *l = xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->rds = rds;
	l->identity = xstrdup(identity);
	l->ttl = ttl;
	l->renew = renew;
	l->on_change = on_change;
	l->priv = priv;
	ev_timer_init(&l->w, leader_on_timer, LEADER_POLL * util_random(), 0.0);
	l->w.data = l;
	ev_timer_start(loop, &l->w);
	return l;
}

void leader_resign(struct leader *l)
{
	if (l->resigned)
		return;
	l->resigned = true;
	ev_timer_stop(l->loop, &l->w);
	if (l->epoch) {
		log_info("leadership released", LF_INT("epoch", l->epoch));
		leader_call(l, true, rds_ignore_reply);
		l->epoch = 0;
		l->lease[0] = '\0';
		l->on_change(l->priv, NULL);
	}
}

void leader_free(struct leader *l)
{
	if (!l)
		return;
	ev_timer_stop(l->loop, &l->w);
	free(l->identity);
	free(l);
}
