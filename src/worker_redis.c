/* worker_redis: a worker's side of Redis: the connection with its backoff,
 * the blocking fetch, the outcomes written in batches (and the next batch
 * fetched in the same script call), and after a failed call the
 * reconciliation of the working list with what the worker holds. The job
 * loop itself is worker.c's; both share worker_int.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "keys.h"
#include "log.h"
#include "queues.h"
#include "rds.h"
#include "sentinel.h"
#include "util.h"
#include "worker_int.h"

/* ---- Redis connection ------------------------------------------------ */


static void worker_backoff(struct worker *w)
{
	if (w->give_up)
		return;
	worker_sleep(w, w->backoff * (0.8 + 0.4 * util_random()));
	w->backoff = w->backoff * 2 > RECONNECT_MAX ? RECONNECT_MAX : w->backoff * 2;
}

/* A call failed: no reply (timeout, reset) or an error reply (LOADING, BUSY,
 * READONLY, NOREPLICAS...). What Redis did is unknown either way, so both
 * are handled alike: the outcomes are kept and sent again, the working list
 * is reconciled on reconnect, and the worker backs off so that a Redis
 * answering errors is not hammered. */
void worker_disconnect(struct worker *w, const char *where)
{
	if (!w->redis_down_logged)
		log_warn("redis unavailable; reconnecting with backoff", LF_STR("during", where),
			 LF_STR("error", w->r ? rds_errstr(w->r) : "not connected"));
	w->redis_down_logged = true;
	rds_close(w->r);
	w->r = NULL;
	w->reconcile = true;
	worker_backoff(w);
}

/* With Sentinel: true when the sentinels name another master than the one
 * connected to (at most every SENTINEL_RECHECK seconds). */
static bool worker_master_moved(struct worker *w)
{
	double now = util_now_mono();
	if (!w->a->redis->nsentinels || now - w->master_checked < SENTINEL_RECHECK)
		return false;
	w->master_checked = now;
	return sentinel_has_moved(w->a->redis, RDS_TIMEOUT);
}

int worker_connect(struct worker *w)
{
	char err[512];
	if (w->r && worker_master_moved(w))
		worker_disconnect(w, "the redis master moved");
	if (w->r)
		return 0;
	w->r = rds_open(w->a->redis, RDS_TIMEOUT, err, sizeof(err));
	w->master_checked = util_now_mono();
	if (!w->r) {
		if (!w->redis_down_logged)
			log_warn("redis unavailable; reconnecting with backoff", LF_STR("error", err));
		w->redis_down_logged = true;
		worker_backoff(w);
		return -1;
	}
	if (w->reconcile && worker_reconcile(w)) {
		worker_disconnect(w, "reconciling the working list");
		return -1;
	}
	return 0;
}

/* A call did what it was asked: Redis is back (a connect alone does not
 * say so, a Redis answering errors accepts connections). */
void worker_redis_ok(struct worker *w)
{
	if (w->redis_down_logged)
		log_info("redis connected");
	w->redis_down_logged = false;
	w->backoff = RECONNECT_MIN;
}

/* ---- replication (min_replicas) ------------------------------------------ */

/* min_replicas: after a round trip that moved jobs into the working list or
 * recorded outcomes, one WAIT for that many replicas. Until they have the
 * write the worker goes no further (it neither runs the jobs fetched nor
 * fetches more), repeating the WAIT with a warning every
 * REPLICAS_WARN_EVERY seconds: a failover meanwhile can only make a job
 * run again, never lose a move or an outcome forq went on from. A stop ends
 * the wait (the write stays on the master alone). -1 when the call failed. */
static int worker_replicate(struct worker *w)
{
	const struct config *c = w->a->cfg;
	char n[16], ms[16];
	if (!c->min_replicas)
		return 0;
	snprintf(n, sizeof(n), "%d", c->min_replicas);
	snprintf(ms, sizeof(ms), "%ld", (long)(c->min_replicas_timeout * 1000 + 0.5));
	for (;;) {
		struct rds_reply *x = rds_callv(w->r, "WAIT", n, ms, NULL);
		if (!x || rds_type(x) != RDS_INT) {
			rds_free(x);
			return -1;
		}
		long long acked = rds_int(x);
		rds_free(x);
		if (acked >= c->min_replicas)
			return 0;
		double now = util_now_mono();
		if (!w->replicas_warned || now - w->replicas_warned >= REPLICAS_WARN_EVERY) {
			log_warn("fewer replicas than min_replicas have forq's write; waiting",
				 LF_INT("acked", acked), LF_INT("min_replicas", c->min_replicas));
			w->replicas_warned = now;
		}
		ev_run(w->loop, EVRUN_NOWAIT); /* a stop signal ends the wait */
		if (w->stopping || w->give_up)
			return 0;
		if (worker_master_moved(w)) /* a failover took the replica */
			return -1;
	}
}

/* ---- fetch -------------------------------------------------------------- */

static double worker_rnd(void *ctx)
{
	(void)ctx;
	return util_random();
}

/* Blocks on one queue until a job arrives or FETCH_BLOCK passes. Strict
 * mode spreads workers over the queues by lane, so every queue has a
 * blocked worker when there are enough workers; weighted mode picks one by
 * weight each time. */
int worker_fetch_blocking(struct worker *w, char **queue, char **payload, size_t *plen)
{
	const struct config *c = w->a->cfg;
	size_t qi;
	char block[16], run_at[32];
	struct rds_reply *x;

	if (c->queues_weighted) {
		queues_order(c, worker_rnd, NULL, w->order);
		qi = w->order[0];
	} else {
		qi = (size_t)w->a->lane % c->nqueues;
	}
	snprintf(block, sizeof(block), "%d", c->nqueues == 1 ? FETCH_BLOCK_ONE : FETCH_BLOCK);
	x = rds_callv(w->r, "BRPOPLPUSH", w->k_queues[qi], w->k_working, block, NULL);
	if (!x || rds_type(x) == RDS_ERR) {
		rds_free(x);
		return -1;
	}
	worker_redis_ok(w);
	if (rds_type(x) != RDS_STR) {
		rds_free(x);
		return 0;
	}
	const char *s = rds_str(x, plen);
	*payload = xstrndup(s, *plen);
	*queue = xstrdup(c->queues[qi].name);
	rds_free(x);
	snprintf(run_at, sizeof(run_at), "%ld", (long)util_now_wall());
	const char *argv[] = {w->k_work, w->k_workers, w->k_proc, w->tid, run_at, *queue,
			      *payload};
	size_t lens[] = {strlen(argv[0]), strlen(argv[1]), strlen(argv[2]), strlen(argv[3]),
			 strlen(argv[4]), strlen(argv[5]), *plen};
	x = rds_eval(w->r, LUA_CLAIM, 3, 7, argv, lens);
	if (!x || rds_type(x) == RDS_ERR)
		worker_disconnect(w, "claim"); /* the job is safe in the working list */
	else if (worker_replicate(w))
		worker_disconnect(w, "waiting for replicas"); /* reconciled on reconnect */
	rds_free(x);
	return 1;
}

/* ---- outcomes ------------------------------------------------------------ */

static void outcome_clear(struct outcome *o)
{
	free(o->payload);
	free(o->stored);
	free(o->lost);
	free(o->queue);
	memset(o, 0, sizeof(*o));
}

/* Takes payload (len bytes) and stored (text; a caller storing bytes sets
 * stored_len on the outcome returned). */
struct outcome *worker_add_outcome(struct worker *w, char *payload, size_t len,
					  const char *what, char *stored, double score,
					  const char *jid, const char *queue)
{
	if (!w->nouts)
		w->span_start = util_now_mono();
	struct outcome *o = &w->outs[w->nouts++];
	w->a->cell->unwritten = (int32_t)w->nouts;
	*o = (struct outcome){payload, len, stored, stored ? strlen(stored) : 0,
			      keys_lost(jid ? jid : "-"), xstrdup(queue ? queue : "default"), what,
			      score};
	return o;
}

/* Sends the recorded outcomes and, when want > 0, fetches up to want jobs
 * in the same script call. 1 when jobs came, 0 when none, -1 when the call
 * failed, an error reply as much as a broken connection (the outcomes are
 * kept and sent again). Recording only, between two jobs of a batch, it
 * also makes the Busy row the job about to start (batch.lua): no round
 * trip of its own, and the row is right whenever a slow job came before. */
int worker_exchange(struct worker *w, size_t want)
{
	const struct config *c = w->a->cfg;
	size_t nq = want ? c->nqueues : 0;
	size_t norders = !want ? 0 : c->queues_weighted ? want : 1;
	const struct fetched *next = !want && w->ibatch < w->nbatch ? &w->batch[w->ibatch] : NULL;
	size_t nkeys = 7 + nq, k = 0, inext = 0;
	size_t nargs = 8 + 6 * w->nouts + nq + (want ? 1 + norders : 0) + (next ? 2 : 0);
	const char **argv = xcalloc(nkeys + nargs, sizeof(*argv));
	size_t *lens = xcalloc(nkeys + nargs, sizeof(*lens));
	char run_at[32], max[16], share[16], cutoff[40], limit[16], n[16], m[16];
	char (*scores)[40] = xcalloc(w->nouts ? w->nouts : 1, sizeof(*scores));
	char **orders = xcalloc(norders ? norders : 1, sizeof(*orders));
	struct rds_reply *x;
	int rc = 0;

	snprintf(run_at, sizeof(run_at), "%ld", (long)util_now_wall());
	snprintf(max, sizeof(max), "%zu", want);
	snprintf(share, sizeof(share), "%d", 2 * c->processes);
	job_format_time(cutoff, sizeof(cutoff), util_now_wall() - JOB_DEAD_TIMEOUT);
	snprintf(limit, sizeof(limit), "%d", JOB_DEAD_MAX);
	snprintf(n, sizeof(n), "%zu", w->nouts);
	snprintf(m, sizeof(m), "%zu", norders);
	argv[k++] = w->k_working, argv[k++] = w->k_work, argv[k++] = w->k_workers;
	argv[k++] = KEY_RETRY, argv[k++] = KEY_DEAD, argv[k++] = KEY_QUEUES;
	argv[k++] = w->k_proc;
	for (size_t i = 0; i < nq; i++)
		argv[k++] = w->k_queues[i];
	argv[k++] = w->tid, argv[k++] = run_at, argv[k++] = max, argv[k++] = share;
	argv[k++] = cutoff, argv[k++] = limit, argv[k++] = KEY_QUEUE_PREFIX, argv[k++] = n;
	for (size_t i = 0; i < w->nouts; i++) {
		struct outcome *o = &w->outs[i];
		if (o->stored) /* only retry and dead entries have a score */
			job_format_time(scores[i], sizeof(scores[i]), o->score);
		else
			memcpy(scores[i], "0", 2);
		argv[k++] = o->payload, argv[k++] = o->what, argv[k++] = o->stored ? o->stored : "";
		argv[k++] = scores[i], argv[k++] = o->lost, argv[k++] = o->queue;
	}
	for (size_t i = 0; i < nq; i++)
		argv[k++] = c->queues[i].name;
	if (want) {
		argv[k++] = m;
		/* One order per job of the batch when weighted, as Sidekiq draws
		 * one per fetch; strict order is the same for every job. */
		for (size_t o = 0; o < norders; o++) {
			size_t cnt = queues_order(c, worker_rnd, NULL, w->order), len = 0;
			orders[o] = xmalloc(cnt * 12 + 1);
			orders[o][0] = '\0';
			for (size_t i = 0; i < cnt; i++)
				len += (size_t)sprintf(orders[o] + len, "%s%zu", i ? "," : "", w->order[i]);
			argv[k++] = orders[o];
		}
	}
	if (next) {
		argv[k++] = next->queue;
		inext = k;
		argv[k++] = next->payload;
	}
	for (size_t i = 0; i < k; i++)
		lens[i] = strlen(argv[i]);
	if (next)
		lens[inext] = next->len;
	for (size_t i = 0, g = nkeys + 8; i < w->nouts; i++, g += 6) /* the payloads: bytes */
		lens[g] = w->outs[i].len, lens[g + 2] = w->outs[i].stored_len;
	x = rds_eval(w->r, LUA_BATCH, (int)nkeys, (int)k, argv, lens);
	for (size_t o = 0; o < norders; o++)
		free(orders[o]);
	free(orders);
	free(argv);
	free(lens);
	free(scores);
	if (!x || rds_type(x) == RDS_ERR) {
		rds_free(x);
		return -1;
	}
	worker_redis_ok(w);
	bool wrote = w->nouts > 0;
	for (size_t i = 0; i < w->nouts; i++)
		outcome_clear(&w->outs[i]);
	w->nouts = 0;
	w->a->cell->unwritten = 0;
	for (size_t i = 0; rds_type(x) == RDS_ARR && i + 1 < rds_len(x) && w->nbatch < BATCH_MAX;
	     i += 2) {
		size_t len;
		const char *q = rds_str(rds_elem(x, i), NULL);
		const char *p = rds_str(rds_elem(x, i + 1), &len);
		w->batch[w->nbatch++] = (struct fetched){xstrdup(q), xstrndup(p, len), len};
		rc = 1;
	}
	rds_free(x);
	/* one WAIT per round trip, however many jobs it moved */
	if ((wrote || rc) && worker_replicate(w))
		return -1; /* what was fetched is reconciled on reconnect */
	return rc;
}

/* Records the outcomes now (no fetch), reconnecting as long as it takes:
 * Redis going away only delays it, the jobs wait in the working list. */
void worker_flush(struct worker *w)
{
	while (w->nouts) {
		if (!worker_connect(w)) {
			if (worker_exchange(w, 0) >= 0)
				continue;
			worker_disconnect(w, "recording outcomes");
		}
		if (w->give_up) /* after one attempt: a fast stop still writes */
			break;
	}
}

/* ---- Sidekiq Metrics ------------------------------------------------------ */

/* Called between jobs, so the connection is free; when it is down, the
 * job loop reconnects and the counts wait for the next flush. */
void worker_flush_metrics(struct worker *w, bool final)
{
	struct skmetrics_call call;
	w->metrics_due = false;
	if (skmetrics_is_empty(&w->metrics))
		return;
	if (!w->r) /* at exit: the outcomes were written first, Redis left since */
		goto out_failed;
	if (w->metrics.dropped)
		log_warn("sidekiq metrics: classes beyond the table's limit not counted",
			 LF_INT("runs", w->metrics.dropped), LF_INT("limit", SKMETRICS_MAX_CLASSES));
	w->metrics.dropped = 0;
	skmetrics_build(&w->metrics, util_now_wall(), &call);
	struct rds_reply *x = rds_eval(w->r, LUA_METRICS, call.nkeys, call.argc, call.argv,
				       call.lens);
	skmetrics_call_free(&call);
	if (x && rds_type(x) != RDS_ERR) {
		rds_free(x);
		skmetrics_clear(&w->metrics);
		if (w->metrics_failed)
			log_info("sidekiq metrics written again");
		w->metrics_failed = false;
		return;
	}
	if (!w->metrics_failed)
		log_warn("sidekiq metrics not written; kept for the next flush",
			 LF_STR("error", x ? rds_str(x, NULL) : rds_errstr(w->r)));
	w->metrics_failed = true;
	if (!x && !final)
		worker_disconnect(w, "writing sidekiq metrics");
	rds_free(x);
out_failed:
	if (final) {
		long long runs = 0;
		for (size_t i = 0; i < w->metrics.n; i++)
			runs += w->metrics.classes[i].runs;
		log_warn("sidekiq metrics lost at exit: redis unavailable", LF_INT("runs", runs));
	}
}

/* ---- reconciling after a failed call -------------------------------------- */

/* Logs a job that worker_reconcile adopts, gives back or drops, with its
 * jid and class, and returns its queue as the payload names it (a copy;
 * "default" when it does not): the working list holds no queue names. */
static char *worker_log_found(const char *msg, const char *payload, size_t len)
{
	struct job j;
	char err[256];
	bool ok = !job_parse(&j, payload, len, err, sizeof(err));
	char *queue = xstrdup(ok && j.queue[0] ? j.queue : "default");
	log_warn(msg, LF_STR("jid", ok ? j.jid : ""), LF_STR("class", ok ? j.job_class : ""),
		 LF_STR("queue", queue));
	job_free(&j);
	return queue;
}

/* A job in the working list that this worker did not know of: the reply
 * that fetched it was lost. It runs like a fetched one, or goes back to its
 * queue when the worker is stopping; when neither fits (never expected) it
 * stays in the list for the recovery after this worker exits. Takes
 * ownership of payload. */
static void worker_adopt(struct worker *w, char *payload, size_t len)
{
	if (!w->stopping && w->nbatch < BATCH_MAX) {
		char *queue = worker_log_found("job found in the working list; running it",
					       payload, len);
		w->batch[w->nbatch++] = (struct fetched){queue, payload, len};
		return;
	}
	if (w->stopping && w->nouts < BATCH_MAX) {
		char *queue = worker_log_found("job found in the working list; giving it back",
					       payload, len);
		worker_add_outcome(w, payload, len, "requeue", NULL, 0, NULL, queue);
		free(queue);
		return;
	}
	free(worker_log_found("job found in the working list; left there for recovery", payload,
			      len));
	free(payload);
}

/* Marks the first unmarked entry of the list x equal to p (plen bytes);
 * false if none. */
static bool worker_match(const struct rds_reply *x, bool *mine, const char *p, size_t plen)
{
	for (size_t i = 0; i < rds_len(x); i++) {
		size_t len;
		const char *s = rds_str(rds_elem(x, i), &len);
		if (!mine[i] && len == plen && !memcmp(s, p, len))
			return mine[i] = true;
	}
	return false;
}

/* After a failed call the worker cannot know what Redis did: a fetch whose
 * reply was lost left jobs in the working list that nobody would run until
 * this worker exits. So on reconnect the list is compared with what the
 * worker holds (pending outcomes, fetched jobs not run yet, the job taking
 * its lock): a job it does not hold is adopted (worker_adopt); a fetched
 * job no longer in the list is not its own any more (the sweep took it, or
 * Redis lost it) and does not run. An outcome whose job is gone was written
 * already: sending it again changes nothing (batch.lua). */
int worker_reconcile(struct worker *w)
{
	struct rds_reply *x = rds_callv(w->r, "LRANGE", w->k_working, "0", "-1", NULL);
	if (!x || rds_type(x) != RDS_ARR) {
		rds_free(x);
		return -1;
	}
	size_t n = rds_len(x), kept = w->ibatch;
	bool *mine = xcalloc(n + 1, sizeof(*mine));
	for (size_t i = 0; i < w->nouts; i++)
		worker_match(x, mine, w->outs[i].payload, w->outs[i].len);
	if (w->locking && !worker_match(x, mine, w->locking, w->locking_len)) {
		free(worker_log_found("job no longer in the working list; not running it",
				      w->locking, w->locking_len));
		w->locking = NULL; /* worker_lock lets it go */
	}
	for (size_t i = w->ibatch; i < w->nbatch; i++) {
		struct fetched *f = &w->batch[i];
		if (worker_match(x, mine, f->payload, f->len)) {
			w->batch[kept++] = *f;
			continue;
		}
		free(worker_log_found("job no longer in the working list; not running it",
				      f->payload, f->len));
		free(f->queue);
		free(f->payload);
	}
	w->nbatch = kept;
	for (size_t i = n; i-- > 0;) { /* the oldest first */
		size_t len;
		const char *s = rds_str(rds_elem(x, i), &len);
		if (!mine[i])
			worker_adopt(w, xstrndup(s, len), len); /* copies len bytes, NULs included */
	}
	free(mine);
	rds_free(x);
	w->reconcile = false;
	return 0;
}

/* The end of a worker that gave up on Redis (worker_hurry): what it did
 * not write stays in its working list, and the jobs run again once the
 * master's recovery, or for an orphan the sweep, puts them back. */
void worker_leave_outcomes(struct worker *w)
{
	if (!w->nouts)
		return;
	if (w->orphan)
		log_warn("orphaned worker gives up on redis: its jobs stay in its working list "
			 "for the orphan sweep",
			 LF_INT("outcomes_not_written", w->nouts),
			 LF_DBL("shutdown_timeout", w->a->cfg->shutdown_timeout));
	else
		log_warn("worker gives up on redis: its jobs stay in its working list for the "
			 "master's recovery",
			 LF_INT("outcomes_not_written", w->nouts));
	for (size_t i = 0; i < w->nouts; i++)
		outcome_clear(&w->outs[i]);
	w->nouts = 0;
}
