/* registry: one MULTI per beat, so the process hash, the busy count and the
 * stats move together; the signal list is popped in the same transaction,
 * one signal per beat, as Sidekiq does. */
#include "registry.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ident.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "util.h"

struct registry {
	struct ev_loop *loop;
	struct rds_async *rds;
	struct registry_hooks hooks;
	char *identity, *info;
	char *k_proc, *k_work, *k_workers, *k_signals, *k_node;
	bool in_flight;
	bool rows_in_flight; /* a registry_refresh_rows call awaits its reply */
	char **shown;        /* by lane: the jid whose row the master wrote last */
	size_t nshown;
	long node_ttl_ms;
	double started_at;
	long long sent_processed, sent_failed;
	void (*leave_done)(void *priv);
	void *leave_priv;
};

/* Sidekiq 7/8's name for how a capsule fetches (Capsule#queues=): no
 * weights is "strict"; weights all equal draw the queues in random order,
 * which Sidekiq calls "random" (all 1); anything else is "weighted". */
static const char *registry_mode(const struct config *cfg)
{
	if (!cfg->queues_weighted)
		return "strict";
	for (size_t i = 1; i < cfg->nqueues; i++)
		if (cfg->queues[i].weight != cfg->queues[0].weight)
			return "weighted";
	return "random";
}

/* The info JSON the Web UI reads (research §8.3): built once. "queues" and
 * "weights" are what 6.4 and 7.x read; 8.x reads "capsules" instead (its
 * Busy page answers 500 without it), so forq, one pool of processes, is
 * one capsule named "default" with the same queues and weights. */
static char *registry_info(const char *identity, const struct config *cfg, double started_at)
{
	char host[256], started[40], *queues = xstrdup(""), *weights = xstrdup("");
	ident_hostname(host, sizeof(host));
	job_format_time(started, sizeof(started), started_at);
	for (size_t i = 0; i < cfg->nqueues; i++) {
		char *q = job_json_quote(cfg->queues[i].name);
		char *nq = xasprintf("%s%s%s", queues, i ? "," : "", q);
		char *nw = xasprintf("%s%s%s:%d", weights, i ? "," : "", q,
				     cfg->queues_weighted ? cfg->queues[i].weight : 0);
		free(q);
		free(queues);
		free(weights);
		queues = nq;
		weights = nw;
	}
	char *jhost = job_json_quote(host), *jtag = job_json_quote(cfg->tag ? cfg->tag : "");
	char *jid = job_json_quote(identity);
	char *info = xasprintf("{\"hostname\":%s,\"started_at\":%s,\"pid\":%ld,\"tag\":%s,"
			       "\"concurrency\":%d,\"queues\":[%s],\"labels\":[\"forq\"],"
			       "\"identity\":%s,\"version\":\"forq-%s\",\"weights\":[{%s}],"
			       "\"capsules\":{\"default\":{\"concurrency\":%d,\"mode\":\"%s\","
			       "\"weights\":{%s}}},\"embedded\":false}",
			       jhost, started, (long)getpid(), jtag, cfg->processes, queues, jid,
			       FORQ_VERSION, weights, cfg->processes, registry_mode(cfg), weights);
	free(jhost);
	free(jtag);
	free(jid);
	free(queues);
	free(weights);
	return info;
}

struct registry *registry_new(struct ev_loop *loop, struct rds_async *rds, const char *identity,
			      const struct config *cfg, double started_at, double node_ttl,
			      const struct registry_hooks *hooks)
{
	struct registry *r = xcalloc(1, sizeof(*r));
	r->node_ttl_ms = (long)(node_ttl * 1000);
	r->loop = loop;
	r->rds = rds;
	r->hooks = *hooks;
	r->identity = xstrdup(identity);
	r->started_at = started_at;
	r->info = registry_info(identity, cfg, started_at);
	r->k_work = keys_work(identity);
	r->k_workers = keys_workers(identity);
	r->k_signals = keys_signals(identity);
	r->k_node = keys_node(identity);
	r->k_proc = keys_process(identity);
	return r;
}

void registry_reconfigure(struct registry *r, const struct config *cfg)
{
	free(r->info);
	r->info = registry_info(r->identity, cfg, r->started_at);
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	free(r->identity);
	free(r->info);
	free(r->k_work);
	free(r->k_workers);
	free(r->k_signals);
	free(r->k_node);
	for (size_t i = 0; i < r->nshown; i++)
		free(r->shown[i]);
	free(r->shown);
	free(r->k_proc);
	free(r);
}

/* The EXEC reply: the last element is the RPOP of the signals list; the
 * INCRBYs went through if EXEC answered at all. */
static void registry_on_exec(struct rds_reply *x, void *priv)
{
	struct registry *r = priv;
	r->in_flight = false;
	if (!x || rds_type(x) != RDS_ARR) {
		if (x && rds_type(x) == RDS_ERR)
			log_warn("heartbeat failed", LF_STR("error", rds_str(x, NULL)));
		return; /* counts stay pending for the next beat */
	}
	r->hooks.flushed(r->hooks.priv, r->sent_processed, r->sent_failed);
	size_t n = rds_len(x);
	struct rds_reply *sig = n ? rds_elem(x, n - 1) : NULL;
	if (sig && rds_type(sig) == RDS_STR)
		r->hooks.on_signal(r->hooks.priv, rds_str(sig, NULL));
}


#define CALL(...)                                                                                  \
	do {                                                                                       \
		const char *argv_[] = {__VA_ARGS__};                                               \
		if (rds_async_call(r->rds, rds_ignore_reply, NULL, (int)ARRAY_SIZE(argv_), argv_,   \
				   NULL))                                                          \
			goto out_down;                                                             \
	} while (0)

static void registry_stats(struct registry *r, const struct registry_state *st, double now)
{
	char p[32], f[32], ttl[32];
	char *dp = keys_stat_daily(KEY_STAT_PROCESSED, now), *df = keys_stat_daily(KEY_STAT_FAILED, now);
	snprintf(p, sizeof(p), "%lld", st->processed);
	snprintf(f, sizeof(f), "%lld", st->failed);
	snprintf(ttl, sizeof(ttl), "%d", 157680000); /* 5 years, Sidekiq's */
	r->sent_processed = st->processed;
	r->sent_failed = st->failed;
	CALL("INCRBY", KEY_STAT_PROCESSED, p);
	CALL("INCRBY", dp, p);
	CALL("EXPIRE", dp, ttl);
	CALL("INCRBY", KEY_STAT_FAILED, f);
	CALL("INCRBY", df, f);
	CALL("EXPIRE", df, ttl);
out_down:
	free(dp);
	free(df);
}

void registry_state_add_job(struct registry_state *st, int lane, const char *jid, double started)
{
	if (st->njobs == st->capjobs) {
		st->capjobs = st->capjobs ? 2 * st->capjobs : 16;
		st->jobs = xrealloc(st->jobs, st->capjobs * sizeof(*st->jobs));
	}
	struct registry_job *j = &st->jobs[st->njobs++];
	j->lane = lane;
	util_strlcpy(j->jid, jid, sizeof(j->jid));
	j->started = started;
}

/* Whether the master last wrote the row of this job for its lane; marks it
 * written when mark. */
static bool registry_shown(struct registry *r, const struct registry_job *j, bool mark)
{
	size_t lane = (size_t)j->lane;
	if (lane >= r->nshown) {
		r->shown = xrealloc(r->shown, (lane + 1) * sizeof(*r->shown));
		memset(r->shown + r->nshown, 0, (lane + 1 - r->nshown) * sizeof(*r->shown));
		r->nshown = lane + 1;
	}
	bool same = r->shown[lane] && !strcmp(r->shown[lane], j->jid);
	if (mark && !same) {
		free(r->shown[lane]);
		r->shown[lane] = xstrdup(j->jid);
	}
	return same;
}

/* The Busy rows of the jobs in st picked by want (all when NULL), and busy
 * = the number of rows (busy.lua). cb gets the reply. */
static int registry_busy_rows(struct registry *r, const struct registry_state *st,
			      bool (*want)(struct registry *r, const struct registry_job *j, double now),
			      rds_cb cb, double now)
{
	size_t n = 0, k = 0, nowned = 0;
	bool *pick = xcalloc(st->njobs + 1, sizeof(*pick));
	for (size_t i = 0; i < st->njobs; i++)
		n += pick[i] = st->jobs[i].jid[0] && (!want || want(r, &st->jobs[i], now));
	const char **argv = xcalloc(3 + 4 * n, sizeof(*argv));
	char **owned = xcalloc(3 * n + 1, sizeof(*owned));
	argv[k++] = r->k_proc, argv[k++] = r->k_work, argv[k++] = r->k_workers;
	for (size_t i = 0; i < st->njobs; i++)
		if (pick[i])
			argv[k++] = owned[nowned++] = keys_working(r->identity, st->jobs[i].lane);
	for (size_t i = 0; i < st->njobs; i++) {
		if (!pick[i])
			continue;
		registry_shown(r, &st->jobs[i], true);
		argv[k++] = owned[nowned++] = xasprintf("%d", st->jobs[i].lane);
		argv[k++] = st->jobs[i].jid;
		argv[k++] = owned[nowned++] = xasprintf("%ld", (long)st->jobs[i].started);
	}
	int rc = n || !want ? rds_async_eval(r->rds, cb, r, LUA_BUSY, (int)(3 + n), (int)k, argv,
					     NULL)
			    : 1;
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(argv);
	free(pick);
	return rc;
}

/* A job not shown yet that has run long enough to be worth a call. */
static bool registry_row_wanted(struct registry *r, const struct registry_job *j, double now)
{
	return now - j->started >= REGISTRY_ROW_AFTER && !registry_shown(r, j, false);
}

static void registry_on_rows(struct rds_reply *x, void *priv)
{
	struct registry *r = priv;
	(void)x;
	r->rows_in_flight = false;
}

void registry_refresh_rows(struct registry *r, const struct registry_state *st)
{
	if (r->rows_in_flight || !rds_async_is_up(r->rds))
		return;
	if (!registry_busy_rows(r, st, registry_row_wanted, registry_on_rows, util_now_wall()))
		r->rows_in_flight = true;
}

void registry_beat(struct registry *r)
{
	struct registry_state st = {0};
	char busy[16], beat[40], rss[32], conc[16], ttl[16], nttl[16];
	double now = util_now_wall();

	if (r->in_flight || !rds_async_is_up(r->rds))
		return;
	r->hooks.state(r->hooks.priv, &st);
	snprintf(busy, sizeof(busy), "%d", st.busy);
	job_format_time(beat, sizeof(beat), now);
	snprintf(rss, sizeof(rss), "%ld", st.rss_kb);
	snprintf(conc, sizeof(conc), "%d", st.concurrency);
	snprintf(ttl, sizeof(ttl), "%d", REGISTRY_TTL);
	snprintf(nttl, sizeof(nttl), "%ld", r->node_ttl_ms);
	CALL("MULTI");
	registry_stats(r, &st, now);
	CALL("SADD", KEY_PROCESSES, r->identity);
	CALL("HSET", r->k_proc, "info", r->info, "busy", busy, "beat", beat, "quiet",
	     st.quiet ? "true" : "false", "rss", rss, "rtt_us", "0", "concurrency", conc);
	if (registry_busy_rows(r, &st, NULL, rds_ignore_reply, now))
		goto out_down;
	CALL("EXPIRE", r->k_proc, ttl);
	CALL("EXPIRE", r->k_work, ttl);
	CALL("EXPIRE", r->k_workers, ttl);
	CALL("SET", r->k_node, beat, "PX", nttl);
	CALL("SADD", KEY_NODES, r->identity);
	CALL("RPOP", r->k_signals);
	{
		const char *argv[] = {"EXEC"};
		if (rds_async_call(r->rds, registry_on_exec, r, 1, argv, NULL))
			goto out_down;
	}
	r->in_flight = true;
	free(st.jobs);
	return;
out_down:
	free(st.jobs); /* the connection dropped mid-way: MULTI is discarded with it */
}

static void registry_on_left(struct rds_reply *x, void *priv)
{
	struct registry *r = priv;
	(void)x;
	if (r->leave_done)
		r->leave_done(r->leave_priv);
	r->leave_done = NULL;
}

void registry_leave(struct registry *r, void (*done)(void *priv), void *priv)
{
	r->leave_done = done;
	r->leave_priv = priv;
	if (!rds_async_is_up(r->rds))
		goto out_down;
	CALL("MULTI");
	CALL("SREM", KEY_PROCESSES, r->identity);
	CALL("SREM", KEY_NODES, r->identity);
	CALL("UNLINK", r->k_work, r->k_workers, r->k_node);
	{
		const char *argv[] = {"EXEC"};
		if (rds_async_call(r->rds, registry_on_left, r, 1, argv, NULL))
			goto out_down;
	}
	return;
out_down:
	registry_on_left(NULL, r);
}
