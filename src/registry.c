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
	long node_ttl_ms;
	double started_at;
	long long sent_processed, sent_failed;
	void (*leave_done)(void *priv);
	void *leave_priv;
};

/* The info JSON the Web UI reads (research §8.3): built once. */
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
			       "\"embedded\":false}",
			       jhost, started, (long)getpid(), jtag, cfg->processes, queues, jid,
			       FORQ_VERSION, weights);
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
	return;
out_down:
	return; /* the connection dropped mid-way: MULTI is discarded with it */
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
