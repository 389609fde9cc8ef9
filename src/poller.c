/* poller: ZRANGEBYSCORE for due members, then enqueue_due.lua with each
 * member's new payload (a fresh enqueued_at spliced in by job.c, never
 * re-encoded in Lua). A full batch polls again at once. */
#include "poller.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#define POLL_BATCH 100

struct poller {
	struct ev_loop *loop;
	struct rds_async *rds;
	double average;
	ev_timer w;
	int set;  /* index into sets[] being polled */
	bool busy, stopped;
	char lease[400]; /* "" when this node is not the leader */
};

static const enum keys_id sets[] = {KEYS_ID_RETRY, KEYS_ID_SCHEDULE};

static void poller_next(struct poller *p);

/* Sidekiq 6.4: uniform in [avg/2, 1.5 avg) for fewer than 10 processes. */
static double poller_interval(const struct poller *p)
{
	return p->average * util_random() + p->average / 2;
}

static void poller_on_moved(struct rds_reply *x, void *priv)
{
	struct poller *p = priv;
	if (x && rds_type(x) == RDS_INT && rds_int(x) > 0)
		log_debug("due jobs enqueued", LF_STR("set", keys_fixed(sets[p->set])),
			  LF_INT("jobs", rds_int(x)));
	else if (x && rds_type(x) == RDS_INT && rds_int(x) < 0)
		log_warn("poller fenced: this node is no longer the leader");
	else if (x && rds_type(x) == RDS_ERR)
		log_warn("poller script failed", LF_STR("error", rds_str(x, NULL)));
	poller_next(p);
}

static void poller_on_due(struct rds_reply *x, void *priv)
{
	struct poller *p = priv;
	size_t n = x && rds_type(x) == RDS_ARR ? rds_len(x) : 0;
	if (!n) {
		poller_next(p);
		return;
	}
	const char **argv = xcalloc(5 + 3 * n, sizeof(*argv));
	size_t *lens = xcalloc(5 + 3 * n, sizeof(*lens));
	char **owned = xcalloc(2 * n, sizeof(*owned));
	double now = util_now_wall();
	argv[0] = keys_fixed(sets[p->set]), argv[1] = KEY_QUEUES, argv[2] = KEY_LEADER;
	argv[3] = KEY_QUEUE_PREFIX, argv[4] = p->lease;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *member = rds_str(rds_elem(x, i), &len);
		char *copy = xstrndup(member, len);
		char *queue = job_peek_queue(copy);
		/* A payload with a NUL byte moves on whole, for the worker to bury:
		 * rewritten, it would lose what follows the NUL. */
		bool bytes = memchr(member, '\0', len);
		owned[2 * i] = bytes ? xstrndup(member, len) : job_with_enqueued_at(copy, now);
		owned[2 * i + 1] = queue ? queue : xstrdup("default");
		argv[5 + 3 * i] = member, lens[5 + 3 * i] = len;
		argv[6 + 3 * i] = owned[2 * i], lens[6 + 3 * i] = bytes ? len : strlen(owned[2 * i]);
		argv[7 + 3 * i] = owned[2 * i + 1], lens[7 + 3 * i] = strlen(owned[2 * i + 1]);
		free(copy);
	}
	for (int i = 0; i < 5; i++)
		lens[i] = strlen(argv[i]);
	bool full = n == POLL_BATCH;
	if (rds_async_eval(p->rds, poller_on_moved, p, LUA_ENQUEUE_DUE, 3, (int)(5 + 3 * n), argv,
			   lens))
		poller_next(p);
	else if (full)
		p->set--; /* poller_on_moved advances: stay on this set for the rest */
	for (size_t i = 0; i < 2 * n; i++)
		free(owned[i]);
	free(owned);
	free(argv);
	free(lens);
}

static void poller_query(struct poller *p)
{
	char now[40], limit[16];
	job_format_time(now, sizeof(now), util_now_wall());
	snprintf(limit, sizeof(limit), "%d", POLL_BATCH);
	const char *argv[] = {"ZRANGEBYSCORE", keys_fixed(sets[p->set]), "-inf", now, "LIMIT", "0", limit};
	if (rds_async_call(p->rds, poller_on_due, p, 7, argv, NULL)) {
		p->busy = false;
		poller_next(p);
	}
}

/* After one set: the next set, or sleep until the next poll. */
static void poller_next(struct poller *p)
{
	if (p->stopped)
		return;
	p->set++;
	if (p->set >= 0 && (size_t)p->set < ARRAY_SIZE(sets) && rds_async_is_up(p->rds)) {
		poller_query(p);
		return;
	}
	p->busy = false;
	ev_timer_stop(p->loop, &p->w);
	ev_timer_set(&p->w, poller_interval(p), 0.0);
	ev_timer_start(p->loop, &p->w);
}

void poller_poll(struct poller *p)
{
	if (p->busy || p->stopped || !p->lease[0] || !rds_async_is_up(p->rds))
		return;
	p->busy = true;
	p->set = -1;
	poller_next(p);
}

static void poller_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct poller *p = t->data;
	(void)loop;
	(void)revents;
	if (!rds_async_is_up(p->rds)) {
		ev_timer_set(&p->w, poller_interval(p), 0.0);
		ev_timer_start(p->loop, &p->w);
		return;
	}
	poller_poll(p);
}

struct poller *poller_new(struct ev_loop *loop, struct rds_async *rds, double average)
{
	struct poller *p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	p->rds = rds;
	p->average = average;
	ev_timer_init(&p->w, poller_on_timer, poller_interval(p), 0.0);
	p->w.data = p;
	ev_timer_start(loop, &p->w);
	return p;
}

void poller_set_lease(struct poller *p, const char *lease)
{
	snprintf(p->lease, sizeof(p->lease), "%s", lease ? lease : "");
	if (lease)
		poller_poll(p);
}

void poller_stop(struct poller *p)
{
	p->stopped = true;
	ev_timer_stop(p->loop, &p->w);
}

void poller_free(struct poller *p)
{
	if (!p)
		return;
	poller_stop(p);
	free(p);
}
