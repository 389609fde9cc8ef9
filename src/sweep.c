/* sweep: a timer, one script per round (sweep.lua), then a SCAN of each dead
 * node's working lists (not a hot path: only for nodes found dead), handing
 * every list to recover. Every write carries the lease the round started
 * under, and a round ends as soon as that lease is no longer held. */
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
	char round[400]; /* the lease the running round started under */
};

static void sweep_scan_next(struct sweep *s);


static void sweep_done(struct sweep *s)
{
	s->busy = false;
}

/* Ends the round early: the dead nodes it did not finish are still in
 * forq:nodes, so the next round finds them again. */
static void sweep_abandon(struct sweep *s)
{
	free(s->node);
	s->node = NULL;
	while (s->nqueue)
		free(s->queue[--s->nqueue]);
	sweep_done(s);
}

/* false when the lease the round started under is no longer held. */
static bool sweep_is_current(const struct sweep *s)
{
	return s->lease[0] && !strcmp(s->round, s->lease);
}

/* Nothing of the node left in Redis: forget it, unless this node lost the
 * lease or the node's key is back meanwhile (forget.lua checks both). */
static void sweep_forget(struct sweep *s)
{
	char *node = keys_node(s->node);
	const char *argv[] = {KEY_LEADER, node, KEY_NODES, KEY_SWEEP_STRIKES, KEY_PROCESSES,
			      s->round, s->node};
	rds_async_eval(s->rds, rds_ignore_reply, NULL, LUA_FORGET, 5, 7, argv, NULL);
	free(node);
}

static void sweep_on_scan(struct rds_reply *x, void *priv)
{
	struct sweep *s = priv;
	if (!x || rds_type(x) != RDS_ARR || rds_len(x) != 2 || !sweep_is_current(s)) {
		if (x && rds_type(x) == RDS_ERR)
			log_warn("sweep scan failed", LF_STR("node", s->node),
				 LF_STR("error", rds_str(x, NULL)));
		sweep_abandon(s);
		return;
	}
	snprintf(s->cursor, sizeof(s->cursor), "%s", rds_str(rds_elem(x, 0), NULL));
	struct rds_reply *keys = rds_elem(x, 1);
	s->found += rds_len(keys);
	for (size_t i = 0; i < rds_len(keys); i++) {
		/* The lane follows the last ':'; the pattern's length is no
		 * guide, as it holds escapes the key does not. */
		const char *k = rds_str(rds_elem(keys, i), NULL), *colon = strrchr(k, ':');
		long lane;
		if (colon && !util_parse_long(colon + 1, 0, 1L << 30, &lane))
			recover_node_lane(s->rec, s->node, (int)lane, s->round,
					  "its node stopped beating");
	}
	if (!strcmp(s->cursor, "0") && s->found) {
		/* Its lists are with recover; the node is forgotten only when a
		 * later round finds none left, so recovery cut short (this master
		 * dying too) is taken up again by whoever sweeps next. */
		free(s->node);
		s->node = NULL;
	} else if (!strcmp(s->cursor, "0")) {
		sweep_forget(s);
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
		sweep_abandon(s);
}

static void sweep_on_round(struct rds_reply *x, void *priv)
{
	struct sweep *s = priv;
	if (!x || rds_type(x) != RDS_ARR || !rds_len(x) || !sweep_is_current(s)) {
		if (x && rds_type(x) == RDS_ERR)
			log_warn("sweep failed", LF_STR("error", rds_str(x, NULL)));
		sweep_abandon(s);
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
	snprintf(s->round, sizeof(s->round), "%s", s->lease);
	const char *argv[] = {KEY_LEADER,      KEY_NODES,       KEY_SWEEP_STRIKES,
			      KEY_SWEEP_RUNID, KEY_SWEEP_SETTLE, s->identity,
			      s->round,        KEY_NODE_PREFIX, strikes,
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
	bool lost = s->lease[0] && (!lease || strcmp(lease, s->lease));
	snprintf(s->lease, sizeof(s->lease), "%s", lease ? lease : "");
	/* A round in flight sees the change in its next reply and ends. */
	if (lost)
		recover_drop_nodes(s->rec);
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
