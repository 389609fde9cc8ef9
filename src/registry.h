/* registry: this node as a Sidekiq process (research §7-8): the process
 * hash and `processes` membership every 5 s with a 60 s TTL, the TTL of the
 * in-flight work hashes, the stat:* counters, the node heartbeat key of
 * DESIGN.md §6.1, and the Web UI's signals (<identity>-signals). */
#ifndef FORQ_REGISTRY_H
#define FORQ_REGISTRY_H

#include <stdbool.h>

#include "config.h"
#include "rds.h"

#define REGISTRY_BEAT 5.0      /* seconds between heartbeats (Sidekiq 6.4) */
#define REGISTRY_TTL 60        /* seconds, Sidekiq's */
#define REGISTRY_ROWS 1.0      /* seconds between registry_refresh_rows */
#define REGISTRY_ROW_AFTER 0.5 /* a job runs this long before the master shows it */

struct registry;

/* A job a worker runs now: its row on the Busy page (busy.lua). */
struct registry_job {
	int lane; /* the worker's lane: its working list and its row's tid */
	char jid[128];
	double started; /* wall clock */
};

/* What the master reports at each beat. */
struct registry_state {
	int busy;
	struct registry_job *jobs; /* registry_state_add_job; freed by the registry */
	size_t njobs, capjobs;
	int concurrency;
	bool quiet;
	long rss_kb;
	long long processed; /* executions since the last successful flush */
	long long failed;
};

/* For the state hook: a busy worker's job (jid as the scoreboard holds it). */
void registry_state_add_job(struct registry_state *st, int lane, const char *jid, double started);

/* Callbacks into the master. state fills the snapshot; on_signal gets
 * "TSTP", "TERM", "TTIN"... read from the signals list; flushed reports
 * counts that reached Redis (to subtract from the pending totals). */
struct registry_hooks {
	void (*state)(void *priv, struct registry_state *st);
	void (*on_signal)(void *priv, const char *name);
	void (*flushed)(void *priv, long long processed, long long failed);
	void *priv;
};

/* node_ttl: lifetime of forq:node:<identity> (node_dead_after). */
struct registry *registry_new(struct ev_loop *loop, struct rds_async *rds, const char *identity,
			      const struct config *cfg, double started_at, double node_ttl,
			      const struct registry_hooks *hooks);
/* A reload changed the configuration: the info JSON (queues, weights,
 * concurrency, tag) is built again for the next beat. */
void registry_reconfigure(struct registry *r, const struct config *cfg);
/* Beats now (also called by the master's timer). */
void registry_beat(struct registry *r);
/* Between beats: writes the Busy row of each job in st (the jobs running
 * now) that has run REGISTRY_ROW_AFTER seconds and whose row the master
 * did not write yet, so a batch's later job is shown within about a
 * second of its start. st stays the caller's. */
void registry_refresh_rows(struct registry *r, const struct registry_state *st);
/* Leaves the registry (SREM processes, UNLINK the work hashes and the node
 * key) and calls done(priv) once Redis answered or failed. */
void registry_leave(struct registry *r, void (*done)(void *priv), void *priv);
void registry_free(struct registry *r);

#endif
