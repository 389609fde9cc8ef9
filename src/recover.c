/* recover: one queue of lane recoveries, one in flight at a time, each an
 * idempotent script call, so a retry after a lost reply does no harm. */
#include "recover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "keys.h"
#include "log.h"
#include "util.h"

struct task {
	struct task *next;
	int lane;
	enum recover_mode mode;
	int default_retry;
	long long jobs;
};

struct recover {
	struct rds_async *rds;
	char *identity, *k_work, *k_workers;
	recover_done_fn done;
	void *priv;
	struct task *head, *tail;
	bool in_flight;
	int pending;
};

static void recover_next(struct recover *r);

struct recover *recover_new(struct rds_async *rds, const char *identity, recover_done_fn done,
			    void *priv)
{
	struct recover *r = xcalloc(1, sizeof(*r));
	r->rds = rds;
	r->identity = xstrdup(identity);
	r->k_work = keys_work(identity);
	r->k_workers = keys_workers(identity);
	r->done = done;
	r->priv = priv;
	return r;
}

void recover_free(struct recover *r)
{
	if (!r)
		return;
	while (r->head) {
		struct task *t = r->head;
		r->head = t->next;
		free(t);
	}
	free(r->identity);
	free(r->k_work);
	free(r->k_workers);
	free(r);
}

int recover_pending(const struct recover *r)
{
	return r->pending;
}

static void recover_finish_task(struct recover *r)
{
	struct task *t = r->head;
	r->head = t->next;
	if (!r->head)
		r->tail = NULL;
	r->pending--;
	r->done(r->priv, t->lane, t->jobs);
	free(t);
}

static void recover_on_requeued(struct rds_reply *x, void *priv)
{
	struct recover *r = priv;
	r->in_flight = false;
	if (!x)
		return; /* disconnected: recover_resume retries */
	if (rds_type(x) == RDS_ERR) {
		log_error("requeue script failed", LF_STR("error", rds_str(x, NULL)));
	} else {
		r->head->jobs += rds_int(x);
		if (rds_int(x) > 0)
			log_warn("jobs of a dead worker requeued", LF_INT("lane", r->head->lane),
				 LF_INT("jobs", rds_int(x)),
				 LF_STR("where", r->head->mode == RECOVER_FRONT ? "front" : "back"));
	}
	recover_finish_task(r);
	recover_next(r);
}

static int recover_requeue(struct recover *r, struct task *t)
{
	char tid[16];
	char *working = keys_working(r->identity, t->lane);
	snprintf(tid, sizeof(tid), "%d", t->lane);
	const char *argv[] = {working,   r->k_work, r->k_workers,
			      KEY_QUEUES, tid, t->mode == RECOVER_FRONT ? "front" : "back",
			      "default", KEY_QUEUE_PREFIX};
	int rc = rds_async_eval(r->rds, recover_on_requeued, r, LUA_REQUEUE, 4, 8, argv, NULL);
	free(working);
	return rc;
}

/* Timeout: each job in the list goes through the retry rules as failed. */
static void recover_on_recorded(struct rds_reply *x, void *priv)
{
	struct recover *r = priv;
	r->in_flight = false;
	if (!x)
		return;
	r->head->jobs++;
	recover_next(r); /* the same task again: the list may hold more */
}

static void recover_on_listed(struct rds_reply *x, void *priv)
{
	struct recover *r = priv;
	struct task *t = r->head;
	char err[256], tid[16], score[40], cutoff[40], limit[16];
	struct job j;
	r->in_flight = false;
	if (!x)
		return;
	if (rds_type(x) != RDS_STR) { /* empty: done */
		recover_finish_task(r);
		recover_next(r);
		return;
	}
	size_t len;
	const char *s = rds_str(x, &len);
	char *raw = xstrndup(s, len), *stored = NULL;
	const char *outcome = "dead";
	double at = util_now_wall();
	if (job_parse(&j, raw, err, sizeof(err)) == 0) {
		struct job_failure f = {"Forq::Timeout", "plugin handler exceeded its timeout; "
				       "its worker was stopped", j.queue,
				       t->default_retry, at, util_random()};
		enum job_outcome out;
		static const char *const names[] = {"retry", "dead", "discard"};
		stored = job_failure_payload(&j, &f, &out, &at);
		outcome = names[out];
		log_warn("job timed out in a plugin handler", LF_STR("jid", j.jid),
			 LF_STR("class", j.job_class), LF_STR("next", outcome));
	} else {
		stored = job_dead_raw(raw);
	}
	job_free(&j);
	char *working = keys_working(r->identity, t->lane);
	snprintf(tid, sizeof(tid), "%d", t->lane);
	job_format_time(score, sizeof(score), at);
	job_format_time(cutoff, sizeof(cutoff), util_now_wall() - JOB_DEAD_TIMEOUT);
	snprintf(limit, sizeof(limit), "%d", JOB_DEAD_MAX);
	const char *argv[] = {working, r->k_work, r->k_workers, KEY_RETRY, KEY_DEAD, tid, raw,
			      outcome, stored ? stored : "", score, cutoff, limit};
	if (!rds_async_eval(r->rds, recover_on_recorded, r, LUA_FINISH, 5, 12, argv, NULL))
		r->in_flight = true;
	free(working);
	free(raw);
	free(stored);
}

static int recover_list(struct recover *r, struct task *t)
{
	char *working = keys_working(r->identity, t->lane);
	const char *argv[] = {"LINDEX", working, "-1"};
	int rc = rds_async_call(r->rds, recover_on_listed, r, 3, argv, NULL);
	free(working);
	return rc;
}

static void recover_next(struct recover *r)
{
	struct task *t = r->head;
	if (!t || r->in_flight || !rds_async_is_up(r->rds))
		return;
	int rc = t->mode == RECOVER_TIMEOUT ? recover_list(r, t) : recover_requeue(r, t);
	if (!rc)
		r->in_flight = true;
}

void recover_lane(struct recover *r, int lane, enum recover_mode mode, int default_retry)
{
	struct task *t = xcalloc(1, sizeof(*t));
	t->lane = lane;
	t->mode = mode;
	t->default_retry = default_retry;
	if (r->tail)
		r->tail->next = t;
	else
		r->head = t;
	r->tail = t;
	r->pending++;
	recover_next(r);
}

void recover_resume(struct recover *r)
{
	r->in_flight = false;
	recover_next(r);
}
