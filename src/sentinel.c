/* sentinel: the master of a redis+sentinel:// URL, found by asking the
 * sentinels in order and checked with ROLE: synchronously for workers and
 * client commands (inside rds_open), asynchronously on the master's loop
 * through one short-lived rds_async connection per sentinel asked. */
#include "sentinel.h"

#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rds.h"
#include "util.h"

#define SENTINEL_TIMEOUT 1.0 /* seconds one sentinel may take to connect and answer */
#define SENTINEL_ROUNDS 3    /* times sentinel_open asks before it gives up */
#define SENTINEL_BACKOFF 0.2 /* seconds before its second round, doubling */

/* Sentinel i of u as a plain URL: the sentinel password, no user, no db;
 * the rest (TLS settings) as u has it. */
static void sentinel_url(const struct rdsurl *u, int i, struct rdsurl *out)
{
	*out = *u;
	out->nsentinels = 0;
	memset(out->sentinels, 0, sizeof(out->sentinels));
	memset(out->master_name, 0, sizeof(out->master_name));
	memset(out->user, 0, sizeof(out->user));
	memset(out->password, 0, sizeof(out->password));
	memset(out->sentinel_password, 0, sizeof(out->sentinel_password));
	util_strlcpy(out->host, u->sentinels[i].host, sizeof(out->host));
	out->port = u->sentinels[i].port;
	util_strlcpy(out->password, u->sentinel_password, sizeof(out->password));
	out->path[0] = '\0';
	out->db = 0;
}

/* The data node at host:port with u's credentials and db. */
static void node_url(const struct rdsurl *u, const char *host, int port, struct rdsurl *out)
{
	*out = *u;
	out->nsentinels = 0;
	memset(out->sentinel_password, 0, sizeof(out->sentinel_password));
	util_strlcpy(out->host, host, sizeof(out->host));
	out->port = port;
}

/* A get-master-addr-by-name reply, {host, port}: 0, or -1 (nil: unknown). */
static int parse_addr(const struct rds_reply *x, char *host, size_t n, int *port)
{
	size_t len;
	long v;
	if (!x || rds_type(x) != RDS_ARR || rds_len(x) != 2)
		return -1;
	const char *h = rds_str(rds_elem(x, 0), &len);
	if (!len || len >= n || util_parse_long(rds_str(rds_elem(x, 1), NULL), 1, 65535, &v))
		return -1;
	memcpy(host, h, len);
	host[len] = '\0';
	*port = (int)v;
	return 0;
}

void sentinel_note_master(char *last, size_t n, const char *name, const char *addr, bool announce)
{
	if (!strcmp(last, addr))
		return;
	if (last[0])
		log_warn("redis master switched", LF_STR("master_name", name), LF_STR("from", last),
		         LF_STR("to", addr));
	else
		log_at(announce ? LOG_INFO : LOG_DEBUG, "redis master found",
		       LF_STR("master_name", name), LF_STR("redis", addr));
	util_strlcpy(last, addr, n);
}

/* ---- synchronous ------------------------------------------------------- */

/* Asks the sentinels in order: 0 with the first answer, else -1 with why
 * the last one failed in err. */
static int ask_sentinels(const struct rdsurl *u, int *first, double timeout, char *host, size_t n,
                         int *port, char *err, size_t errlen)
{
	double t = timeout < SENTINEL_TIMEOUT ? timeout : SENTINEL_TIMEOUT;
	for (int k = 0; k < u->nsentinels; k++) {
		int i = (*first + k) % u->nsentinels;
		struct rdsurl s;
		char why[512];
		sentinel_url(u, i, &s);
		struct rds *r = rds_open(&s, t, why, sizeof(why));
		memset(&s, 0, sizeof(s));
		if (!r) {
			util_seterr(err, errlen, "sentinel %s:%d: %s", u->sentinels[i].host,
			            u->sentinels[i].port, why);
			continue;
		}
		struct rds_reply *x =
		    rds_callv(r, "SENTINEL", "get-master-addr-by-name", u->master_name, NULL);
		int rc = parse_addr(x, host, n, port);
		if (rc)
			util_seterr(err, errlen, "sentinel %s:%d does not name master '%s': %s",
			            u->sentinels[i].host, u->sentinels[i].port, u->master_name,
			            !x                       ? rds_errstr(r)
			            : rds_type(x) == RDS_ERR ? rds_str(x, NULL)
			                                     : "unknown");
		rds_free(x);
		rds_close(r);
		if (!rc) {
			*first = i;
			return 0;
		}
	}
	return -1;
}

static bool node_is_master(struct rds *r)
{
	struct rds_reply *x = rds_callv(r, "ROLE", NULL);
	bool yes = x && rds_type(x) == RDS_ARR && rds_len(x) > 0 &&
	           !strcmp(rds_str(rds_elem(x, 0), NULL), "master");
	rds_free(x);
	return yes;
}

static void pause_for(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

/* The master this process last used (for the one log line per switch and
 * for sentinel_has_moved) and the sentinel that answered last: per-process
 * notes like rds.c's script SHAs (each worker keeps its own). */
static char last_master[300];
static int sync_first;

int sentinel_has_moved(const struct rdsurl *u, double timeout)
{
	char host[256], addr[300], err[512];
	int port;
	if (!last_master[0] ||
	    ask_sentinels(u, &sync_first, timeout, host, sizeof(host), &port, err, sizeof(err)))
		return 0;
	snprintf(addr, sizeof(addr), "%s:%d", host, port);
	if (!strcmp(addr, last_master))
		return 0;
	log_info("the sentinels name another redis master; reconnecting",
	         LF_STR("master_name", u->master_name), LF_STR("from", last_master),
	         LF_STR("to", addr));
	return 1;
}

struct rds *sentinel_open(const struct rdsurl *u, double timeout, char *err, size_t errlen)
{
	double backoff = SENTINEL_BACKOFF;
	for (int round = 0; round < SENTINEL_ROUNDS; round++, backoff *= 2) {
		char host[256], addr[300];
		int port;
		if (round)
			pause_for(backoff * (0.8 + 0.4 * util_random()));
		if (ask_sentinels(u, &sync_first, timeout, host, sizeof(host), &port, err, errlen))
			continue;
		struct rdsurl m;
		node_url(u, host, port, &m);
		struct rds *r = rds_open(&m, timeout, err, errlen);
		memset(&m, 0, sizeof(m));
		if (!r)
			continue;
		snprintf(addr, sizeof(addr), "%s:%d", host, port);
		if (node_is_master(r)) {
			sentinel_note_master(last_master, sizeof(last_master), u->master_name, addr,
			                     false);
			return r;
		}
		util_seterr(err, errlen,
		            "redis at %s, named master '%s' by the sentinels, is not "
		            "a master",
		            addr, u->master_name);
		rds_close(r);
	}
	return NULL;
}

/* ---- asynchronous ------------------------------------------------------ */

struct sentinel_query {
	struct ev_loop *loop;
	struct rdsurl url; /* the sentinels, the name, the sentinel password */
	sentinel_found_fn found;
	void *priv;
	struct rds_async *conn; /* to the sentinel being asked */
	int idx;                /* which one, counted from first */
	int first;              /* the one that answered last */
	bool asked, stepping;
	char host[256];
	int port;
	ev_timer timeout_w, step_w;
};

/* Moves on from the loop (not from inside the connection's callbacks, where
 * it may not be freed): to the answer, the next sentinel, or failure. */
static void query_step(struct sentinel_query *q)
{
	if (q->stepping)
		return;
	q->stepping = true;
	ev_timer_stop(q->loop, &q->timeout_w);
	ev_timer_set(&q->step_w, 0.0, 0.0);
	ev_timer_start(q->loop, &q->step_w);
}

static int query_sentinel(const struct sentinel_query *q)
{
	return (q->first + q->idx) % q->url.nsentinels;
}

static void query_on_reply(struct rds_reply *x, void *priv)
{
	struct sentinel_query *q = priv;
	if (!q->conn || q->stepping)
		return; /* the connection is being freed */
	const struct rdsurl_node *node = &q->url.sentinels[query_sentinel(q)];
	if (!parse_addr(x, q->host, sizeof(q->host), &q->port))
		q->first = query_sentinel(q);
	else
		log_warn(
		    "sentinel does not name the master", LF_STR("master_name", q->url.master_name),
		    LF_STR("sentinel", node->host), LF_INT("port", node->port),
		    LF_STR("error", x && rds_type(x) == RDS_ERR ? rds_str(x, NULL) : "unknown"));
	query_step(q);
}

static void query_on_state(bool up, void *priv)
{
	struct sentinel_query *q = priv;
	const char *argv[] = {"SENTINEL", "get-master-addr-by-name", q->url.master_name};
	if (!up || q->asked || q->stepping) {
		query_step(q);
		return;
	}
	q->asked = true;
	if (rds_async_call(q->conn, query_on_reply, q, 3, argv, NULL))
		query_step(q);
}

static void query_on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	query_step(t->data);
}

static void query_close(struct sentinel_query *q)
{
	struct rds_async *c = q->conn;
	q->conn = NULL;
	rds_async_free(c); /* query_on_reply then runs with NULL and returns */
	ev_timer_stop(q->loop, &q->timeout_w);
}

static void query_on_step(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sentinel_query *q = t->data;
	struct rdsurl s;
	(void)loop;
	(void)revents;
	q->stepping = false;
	query_close(q);
	if (q->host[0] || ++q->idx >= q->url.nsentinels) {
		q->found(q->host[0] ? q->host : NULL, q->port, q->priv);
		return;
	}
	q->asked = false;
	sentinel_url(&q->url, query_sentinel(q), &s);
	q->conn = rds_async_new(q->loop, &s, "sentinel", query_on_state, q);
	memset(&s, 0, sizeof(s));
	ev_timer_set(&q->timeout_w, SENTINEL_TIMEOUT, 0.0);
	ev_timer_start(q->loop, &q->timeout_w);
}

struct sentinel_query *sentinel_query_new(struct ev_loop *loop, const struct rdsurl *u,
                                          sentinel_found_fn found, void *priv)
{
	struct sentinel_query *q = xcalloc(1, sizeof(*q));
	q->loop = loop;
	q->url = *u;
	memset(q->url.password, 0, sizeof(q->url.password)); /* not the sentinels' */
	q->found = found;
	q->priv = priv;
	ev_timer_init(&q->timeout_w, query_on_timeout, 0.0, 0.0);
	q->timeout_w.data = q;
	ev_timer_init(&q->step_w, query_on_step, 0.0, 0.0);
	q->step_w.data = q;
	return q;
}

void sentinel_query_start(struct sentinel_query *q)
{
	query_close(q);
	ev_timer_stop(q->loop, &q->step_w);
	q->idx = -1;
	q->host[0] = '\0';
	q->stepping = false;
	query_step(q);
}

void sentinel_query_free(struct sentinel_query *q)
{
	if (!q)
		return;
	query_close(q);
	ev_timer_stop(q->loop, &q->step_w);
	memset(&q->url, 0, sizeof(q->url));
	free(q);
}

void sentinel_query_forget(struct sentinel_query *q)
{
	if (q && q->conn)
		rds_async_forget(q->conn);
}
