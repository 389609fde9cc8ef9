/* sweep: a timer, one script per round (sweep.lua), then a SCAN of each dead
 * node's working lists (not a hot path: only for nodes found dead), handing
 * every list to recover. */
#include "sweep.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "util.h"

#define SWEEP_STRIKES 2

struct sweep {
	struct ev_loop *loop;
	struct rds_async *rds;
	struct recover *rec;
	char *identity;
	double interval, settle;
	ev_timer w;
	bool busy, stopped;
	/* the node being scanned */
	char *node, *pattern, cursor[32];
	size_t found; /* lists of the node found by this scan */
	char **queue; /* dead nodes still to scan */
	size_t nqueue;
	bool settling_logged;
	char lease[400]; /* "" when this node is not the leader */
};

static void sweep_scan_next(struct sweep *s);


static void sweep_done(struct sweep *s)
{
	s->busy = false;
}

static void sweep_on_scan(struct rds_reply *x, void *priv)
{
	struct sweep *s = priv;
	if (!x || rds_type(x) != RDS_ARR || rds_len(x) != 2) {
		free(s->node); /* still in forq:nodes: the next round scans it again */
		s->node = NULL;
		sweep_done(s);
		return;
	}
	snprintf(s->cursor, sizeof(s->cursor), "%s", rds_str(rds_elem(x, 0), NULL));
	struct rds_reply *keys = rds_elem(x, 1);
	size_t plen = strlen(s->pattern) - 1; /* without the '*' */
	s->found += rds_len(keys);
	for (size_t i = 0; i < rds_len(keys); i++) {
		const char *k = rds_str(rds_elem(keys, i), NULL);
		long lane;
		if (strlen(k) > plen && !util_parse_long(k + plen, 0, 1L << 30, &lane))
			recover_lane(s->rec, s->node, (int)lane, false, NULL, RECOVER_LOST,
				     "its node stopped beating", 25);
	}
	if (!strcmp(s->cursor, "0") && s->found) {
		/* Its lists are with recover; the node is forgotten only when a
		 * later round finds none left, so recovery cut short (this master
		 * dying too) is taken up again by whoever sweeps next. */
		free(s->node);
		s->node = NULL;
	} else if (!strcmp(s->cursor, "0")) {
		/* Nothing of it left in Redis: forget the node. */
		const char *srem[] = {"SREM", KEY_NODES, s->node};
		const char *hdel[] = {"HDEL", KEY_SWEEP_STRIKES, s->node};
		const char *spro[] = {"SREM", KEY_PROCESSES, s->node};
		rds_async_call(s->rds, rds_ignore_reply, NULL, 3, srem, NULL);
		rds_async_call(s->rds, rds_ignore_reply, NULL, 3, hdel, NULL);
		rds_async_call(s->rds, rds_ignore_reply, NULL, 3, spro, NULL);
		free(s->node);
		s->node = NULL;
	}
	sweep_scan_next(s);
}

/* SCAN the current node's lists to the end, then the next dead node. */
static void sweep_scan_next(struct sweep *s)
{
	if (!s->node) {
		if (!s->nqueue) {
			sweep_done(s);
			return;
		}
		s->node = s->queue[--s->nqueue];
		free(s->pattern);
		s->pattern = keys_working_pattern(s->node);
		s->found = 0;
		snprintf(s->cursor, sizeof(s->cursor), "0");
		log_warn("node stopped beating; recovering its jobs", LF_STR("node", s->node));
	}
	const char *argv[] = {"SCAN", s->cursor, "MATCH", s->pattern, "COUNT", "1000"};
	if (rds_async_call(s->rds, sweep_on_scan, s, 6, argv, NULL))
		sweep_done(s);
}

static void sweep_on_round(struct rds_reply *x, void *priv)
{
	struct sweep *s = priv;
	if (!x || rds_type(x) != RDS_ARR || !rds_len(x)) {
		if (x && rds_type(x) == RDS_ERR)
			log_warn("sweep failed", LF_STR("error", rds_str(x, NULL)));
		sweep_done(s);
		return;
	}
	const char *status = rds_str(rds_elem(x, 0), NULL);
	if (!strcmp(status, "settling") && !s->settling_logged) {
		log_info("redis (re)started: no node is judged dead for one heartbeat TTL",
			 LF_DBL("settle", s->settle));
		s->settling_logged = true;
	} else if (strcmp(status, "settling")) {
		s->settling_logged = false;
	}
	for (size_t i = 1; i < rds_len(x); i++) {
		s->queue = xrealloc(s->queue, (s->nqueue + 1) * sizeof(*s->queue));
		s->queue[s->nqueue++] = xstrdup(rds_str(rds_elem(x, i), NULL));
	}
	sweep_scan_next(s);
}

static void sweep_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sweep *s = t->data;
	char settle[32], strikes[16];
	(void)loop;
	(void)revents;
	if (s->busy || s->stopped || !s->lease[0] || !rds_async_is_up(s->rds))
		return;
	snprintf(settle, sizeof(settle), "%ld", (long)(s->settle + 0.999));
	snprintf(strikes, sizeof(strikes), "%d", SWEEP_STRIKES);
	const char *argv[] = {KEY_LEADER,      KEY_NODES,       KEY_SWEEP_STRIKES,
			      KEY_SWEEP_RUNID, KEY_SWEEP_SETTLE, s->identity,
			      s->lease,        KEY_NODE_PREFIX, strikes,
			      settle};
	if (!rds_async_eval(s->rds, sweep_on_round, s, LUA_SWEEP, 5, 10, argv, NULL))
		s->busy = true;
}

struct sweep *sweep_new(struct ev_loop *loop, struct rds_async *rds, struct recover *rec,
			const char *identity, double interval, double settle)
{
	struct sweep *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->rds = rds;
	s->rec = rec;
	s->identity = xstrdup(identity);
	s->interval = interval;
	s->settle = settle;
	ev_timer_init(&s->w, sweep_on_timer, interval * (0.5 + 0.5 * util_random()), interval);
	s->w.data = s;
	ev_timer_start(loop, &s->w);
	return s;
}

void sweep_set_lease(struct sweep *s, const char *lease)
{
	snprintf(s->lease, sizeof(s->lease), "%s", lease ? lease : "");
}

void sweep_stop(struct sweep *s)
{
	s->stopped = true;
	ev_timer_stop(s->loop, &s->w);
}

void sweep_free(struct sweep *s)
{
	if (!s)
		return;
	sweep_stop(s);
	free(s->node);
	while (s->nqueue)
		free(s->queue[--s->nqueue]);
	free(s->queue);
	free(s->pattern);
	free(s->identity);
	free(s);
}
