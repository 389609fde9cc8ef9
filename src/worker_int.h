/* worker_int: what worker.c (the job loop) and worker_redis.c (its Redis
 * side) share about one worker process. Private to those two files. */
#ifndef FORQ_WORKER_INT_H
#define FORQ_WORKER_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "handler.h"
#include "skmetrics.h"
#include "worker.h"

struct rds;

#define WORKER_PARENT_CHECK 1.0 /* seconds between master-alive checks */
#define FETCH_BLOCK 2           /* seconds a blocking fetch waits (Sidekiq's) */
#define FETCH_BLOCK_ONE 1       /* ... with a single queue (see worker_serve) */
#define RDS_TIMEOUT 5.0         /* any call, including the blocking fetch */
#define RECONNECT_MIN 0.1
#define RECONNECT_MAX 5.0
#define REPLICAS_WARN_EVERY 10.0 /* seconds between min_replicas warnings */

#define BATCH_MAX 100     /* jobs fetched in one round trip at most */
#define BATCH_SPAN 0.010  /* seconds of work a batch may hold: outcomes wait at
			   * most this long, and a crash repeats at most this much */

/* A job fetched into the working list, not yet run. A payload is bytes: it
 * goes back to Redis with its length (a NUL in it is data, not its end). */
struct fetched {
	char *queue, *payload;
	size_t len;
};

/* An outcome not yet written to Redis (written again after reconnect). */
struct outcome {
	char *payload;    /* as fetched (in the working list) */
	size_t len;       /* payload's */
	char *stored;     /* retry/dead payload */
	size_t stored_len;
	char *lost;       /* forq:lost:<jid> */
	char *queue;      /* for requeue */
	const char *what; /* ack | retry | dead | discard | requeue */
	double score;
};

struct worker {
	const struct worker_args *a;
	struct ev_loop *loop;
	struct plugin_set *own_plugins; /* loaded here when not preforked */
	struct handler_env henv;
	ev_signal sig_term, sig_quit, sig_tstp, sig_usr1, sig_ttin, sig_winch;
	ev_timer tick, sleep_w, shutdown_w, orphan_w, metrics_w;
	double started;
	bool quiet, stopping, busy, redis_down_logged;
	bool idle; /* the last blocking fetch timed out */
	bool any_unique; /* some class has a unique lock type */
	bool orphan;     /* the master is gone */
	bool give_up;    /* stop retrying Redis: the jobs stay in the working list */
	bool reconcile;  /* a call failed: compare the working list on reconnect */
	double backoff;
	struct rds *r;
	const char *locking; /* payload of the job taking its unique lock */
	size_t locking_len;
	char tid[16];
	char *k_working, *k_work, *k_workers, *k_proc; /* k_proc: the process hash <identity> */
	char **k_queues; /* queue:<name> for each configured queue */
	size_t *order;     /* scratch: fetch order, one per queue */
	struct fetched batch[BATCH_MAX];
	size_t nbatch, ibatch;
	struct outcome outs[BATCH_MAX];
	size_t nouts;
	double last_elapsed; /* seconds the last job took */
	double span_start;   /* when the oldest unrecorded outcome was made */
	double replicas_warned; /* when the last min_replicas warning was logged */
	double master_checked;  /* when the sentinels were last asked (sentinel.h) */
	char title[160];     /* the process title last set */
	struct skmetrics metrics; /* Sidekiq Metrics counts since the last flush */
	bool metrics_due;         /* metrics_w fired: flush between jobs */
	bool metrics_failed;      /* the last flush failed (logged once) */
};

/* worker.c: waits up to seconds while still handling signals; a stop cuts
 * it short. */
void worker_sleep(struct worker *w, double seconds);

/* worker_redis.c. Calls return -1 when the connection broke or Redis
 * answered an error (the worker then disconnects, see worker_disconnect). */
int worker_connect(struct worker *w);
/* A call failed: what Redis did is unknown; back off, reconcile on reconnect. */
void worker_disconnect(struct worker *w, const char *where);
/* A call did what it was asked: Redis is back. */
void worker_redis_ok(struct worker *w);
/* Blocks on one queue for a job: 1 with *queue, *payload (*plen bytes; the
 * caller frees both), 0 when none came, -1 on failure. */
int worker_fetch_blocking(struct worker *w, char **queue, char **payload, size_t *plen);
/* Adds an outcome to be written; takes ownership of payload and stored. */
struct outcome *worker_add_outcome(struct worker *w, char *payload, size_t len,
				   const char *what, char *stored, double score, const char *jid,
				   const char *queue);
/* Writes the outcomes and fetches up to want jobs in one call: 1 when jobs
 * came, 0 when none, -1 on failure (the outcomes are kept). */
int worker_exchange(struct worker *w, size_t want);
/* Writes the outcomes now, reconnecting as long as it takes. */
void worker_flush(struct worker *w);
/* Writes the Sidekiq Metrics counts (one metrics.lua call); on failure
 * they are kept for the next flush. final: the worker is exiting, so a
 * failure loses them (logged with the count). */
void worker_flush_metrics(struct worker *w, bool final);
/* Compares the working list with what the worker holds (see worker_redis.c). */
int worker_reconcile(struct worker *w);
/* A worker that gave up on Redis: what it did not write stays in its list. */
void worker_leave_outcomes(struct worker *w);

#endif
