/* recover: a queue of lane recoveries, one Redis call in flight at a time.
 * Per lane: read the Busy entry (the job that was running), then take the
 * jobs out one by one (LINDEX, then one script per job that removes it and
 * decides where it goes), then clear the Busy entry. Every step is
 * idempotent, so a retry after a lost connection or an error reply (a Redis
 * still LOADING, BUSY...) does no harm: error replies repeat the step after
 * a backoff, nothing is skipped. Another node's lanes carry the sweep's
 * lease, which lose.lua checks together with the node's key. */
#include "recover.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "keys.h"
#include "log.h"
#include "util.h"

enum step { STEP_CURRENT, STEP_NEXT, STEP_CLEAR };

/* Backoff of a step that Redis answered with an error (seconds). */
#define RECOVER_RETRY_MIN 0.1
#define RECOVER_RETRY_MAX 5.0

struct task {
	struct task *next;
	char *identity;
	int lane;
	bool own;
	enum recover_mode mode;
	char *cause;
	int default_retry;
	enum step step;
	char *current; /* payload of the job that was running, or NULL */
	char *jid;     /* or its jid (from the scoreboard), or NULL */
	char *lock_key; /* the unique lock it held (recover_lock), or NULL */
	char *moving;   /* the job last handed to lose.lua (moving_len bytes), or NULL */
	size_t moving_len;
	bool gone;      /* and lose.lua found it gone */
	bool lock_lease;
	double lock_ttl;
	long long requeued, buried;
	char *lease;  /* another node's lane: the sweep's lease; NULL for ours */
	bool dropped; /* fenced: ends when it reaches the head, with no call */
};

struct recover {
	struct ev_loop *loop;
	struct rds_async *rds;
	recover_done_fn done;
	void *priv;
	struct task *head, *tail;
	bool in_flight;
	bool waiting;      /* the head's step waits out retry_w */
	unsigned failures; /* error replies in a row to the head's step */
	ev_timer retry_w;
	int pending;
};

static void recover_next(struct recover *r);

static void recover_on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct recover *r = w->data;
	(void)loop;
	(void)revents;
	r->waiting = false;
	recover_next(r);
}

struct recover *recover_new(struct ev_loop *loop, struct rds_async *rds, recover_done_fn done,
			    void *priv)
{
	struct recover *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->rds = rds;
	r->done = done;
	r->priv = priv;
	ev_timer_init(&r->retry_w, recover_on_retry, 0.0, 0.0);
	r->retry_w.data = r;
	return r;
}

static void task_free(struct task *t)
{
	free(t->identity);
	free(t->cause);
	free(t->current);
	free(t->jid);
	free(t->lock_key);
	free(t->moving);
	free(t->lease);
	free(t);
}

void recover_free(struct recover *r)
{
	if (!r)
		return;
	ev_timer_stop(r->loop, &r->retry_w);
	while (r->head) {
		struct task *t = r->head;
		r->head = t->next;
		task_free(t);
	}
	free(r);
}

int recover_pending(const struct recover *r)
{
	return r->pending;
}

/* The head task is over: recovered, or dropped by a fence. */
static void recover_task_done(struct recover *r)
{
	struct task *t = r->head;
	r->head = t->next;
	if (!r->head)
		r->tail = NULL;
	r->pending--;
	r->failures = 0;
	if (!t->dropped && (t->requeued || t->buried))
		log_warn("jobs of a dead worker recovered", LF_STR("node", t->identity),
			 LF_INT("lane", t->lane), LF_INT("requeued", t->requeued),
			 LF_INT("dead", t->buried), LF_STR("cause", t->cause));
	r->done(r->priv, t->own ? t->lane : -1);
	task_free(t);
}

/* An error reply: the same step again after a capped, jittered backoff. */
static void recover_retry_later(struct recover *r, struct rds_reply *x)
{
	struct task *t = r->head;
	double delay = RECOVER_RETRY_MIN;
	for (unsigned i = 0; i < r->failures && delay < RECOVER_RETRY_MAX; i++)
		delay *= 2;
	delay = (delay < RECOVER_RETRY_MAX ? delay : RECOVER_RETRY_MAX) *
		(0.8 + 0.4 * util_random());
	r->failures++;
	/* Once per streak at warn: a long LOADING would flood the log. */
	log_at(r->failures == 1 ? LOG_WARN : LOG_DEBUG, "recovery step failed; retrying",
	       LF_STR("node", t->identity), LF_INT("lane", t->lane),
	       LF_STR("error", rds_str(x, NULL)), LF_INT("attempt", r->failures),
	       LF_DBL("delay", delay));
	r->waiting = true;
	ev_timer_set(&r->retry_w, delay, 0.0);
	ev_timer_start(r->loop, &r->retry_w);
}

/* Every callback starts here. true: a reply to act on. false: nothing to
 * do now (disconnected: recover_resume repeats the step; an error reply:
 * the step is retried later; a dropped task: discarded). */
static bool recover_take_reply(struct recover *r, struct rds_reply *x)
{
	r->in_flight = false;
	if (!x)
		return false;
	if (r->head->dropped) {
		recover_next(r);
		return false;
	}
	if (rds_type(x) == RDS_ERR) {
		recover_retry_later(r, x);
		return false;
	}
	if (r->failures) {
		log_info("recovery step succeeded after retries", LF_STR("node", r->head->identity),
			 LF_INT("lane", r->head->lane), LF_INT("attempts", r->failures + 1));
		r->failures = 0;
	}
	return true;
}

/* lose.lua refused to write: this node lost the lease, or the swept node's
 * key is back. The task ends here, and so does every queued one the same
 * answer applies to. */
static void recover_fenced(struct recover *r, struct task *t, bool alive)
{
	log_warn(alive ? "recovery of a node's jobs stopped: the node is alive again"
		       : "recovery of a node's jobs stopped: this node is no longer the leader",
		 LF_STR("node", t->identity), LF_INT("lane", t->lane),
		 LF_INT("requeued", t->requeued), LF_INT("dead", t->buried));
	for (struct task *u = r->head; u; u = u->next)
		if (u->lease && !strcmp(alive ? u->identity : u->lease,
					alive ? t->identity : t->lease))
			u->dropped = true;
}

static void recover_on_current(struct rds_reply *x, void *priv)
{
	struct recover *r = priv;
	if (!recover_take_reply(r, x))
		return;
	if (rds_type(x) == RDS_STR) {
		free(r->head->current);
		r->head->current = job_json_get_string(rds_str(x, NULL), "payload");
	}
	r->head->step = STEP_NEXT;
	recover_next(r);
}

static void recover_on_moved(struct rds_reply *x, void *priv)
{
	struct recover *r = priv;
	if (!recover_take_reply(r, x))
		return;
	struct task *t = r->head;
	t->gone = false;
	if (rds_type(x) == RDS_ARR && rds_len(x) == 2) {
		const char *action = rds_str(rds_elem(x, 0), NULL);
		if (!strcmp(action, "dead"))
			t->buried++;
		else if (!strcmp(action, "requeued"))
			t->requeued++;
		else if (!strcmp(action, "fenced") || !strcmp(action, "alive"))
			recover_fenced(r, t, !strcmp(action, "alive"));
		t->gone = !strcmp(action, "gone");
	} else if (rds_type(x) == RDS_INT) { /* finish.lua (timeout) */
		t->buried++;
	}
	t->step = STEP_NEXT; /* the list may hold more */
	recover_next(r);
}

static void recover_on_cleared(struct rds_reply *x, void *priv)
{
	struct recover *r = priv;
	if (!recover_take_reply(r, x))
		return;
	recover_task_done(r);
	recover_next(r);
}

/* A plugin handler's timeout: the running job failed, by the retry rules. */
static int recover_timeout(struct recover *r, struct task *t, const struct job *j,
			   const char *working, const char *tid)
{
	struct job_failure f = {
		.error_class = "Forq::Timeout",
		.error_message = "plugin handler exceeded its timeout; its worker was stopped",
		.fetched_queue = j->queue,
		.default_max = t->default_retry,
		.now = util_now_wall(),
		.rnd = util_random(),
	};
	static const char *const names[] = {"retry", "dead", "discard"};
	enum job_outcome out;
	double at;
	char score[40], cutoff[40], limit[16], ttl[32];
	char *stored = job_failure_payload(j, &f, &out, &at);
	char *work = keys_work(t->identity), *workers = keys_workers(t->identity);
	char *lost = keys_lost(j->jid);
	job_format_time(score, sizeof(score), at);
	job_format_time(cutoff, sizeof(cutoff), f.now - JOB_DEAD_TIMEOUT);
	snprintf(limit, sizeof(limit), "%d", JOB_DEAD_MAX);
	log_warn("job timed out in a plugin handler", LF_STR("jid", j->jid),
		 LF_STR("class", j->job_class), LF_STR("next", names[out]));
	snprintf(ttl, sizeof(ttl), "%lld", (long long)((at - f.now + t->lock_ttl) * 1000.0));
	const char *argv[] = {working, work, workers, KEY_RETRY, KEY_DEAD, lost, tid, j->raw,
			      names[out], stored ? stored : "", score, cutoff, limit,
			      t->lock_key ? t->lock_key : "", j->jid, t->lock_lease ? "1" : "0", ttl};
	int rc = rds_async_eval(r->rds, recover_on_moved, r, LUA_FINISH, 6, 17, argv, NULL);
	free(stored);
	free(work);
	free(workers);
	free(lost);
	return rc;
}

/* Moves one job (raw, len bytes) out of the list: a lost running job counts
 * a loss. */
static int recover_move(struct recover *r, struct task *t, const char *working, const char *raw,
			size_t len)
{
	char err[256], now[40], cutoff[40], limit[16], threshold[16], ttl[16], msg[256], lttl[32];
	struct job j;
	int rc;
	bool parsed = !job_parse(&j, raw, len, err, sizeof(err));
	/* (a Busy entry's payload is JSON text, cut at a NUL: such a job never ran) */
	bool running = t->jid ? parsed && t->jid[0] && !strcmp(t->jid, j.jid)
			      : t->current && strlen(t->current) == len &&
					!memcmp(t->current, raw, len);

	if (running && parsed && t->mode == RECOVER_TIMEOUT) {
		char tid[16];
		snprintf(tid, sizeof(tid), "%d", t->lane);
		rc = recover_timeout(r, t, &j, working, tid);
		job_free(&j);
		return rc;
	}
	bool count = running && t->mode == RECOVER_LOST && parsed && j.jid[0];
	snprintf(msg, sizeof(msg), "worker process died %d times while running this job "
		 "(last: %s)", RECOVER_POISON_LOSSES, t->cause);
	char *dead = parsed ? job_lost_payload(&j, msg, util_now_wall()) : job_dead_raw(raw);
	char *lost = keys_lost(parsed && j.jid[0] ? j.jid : "-");
	const char *queue = parsed && j.queue && j.queue[0] ? j.queue : "default";
	job_format_time(now, sizeof(now), util_now_wall());
	job_format_time(cutoff, sizeof(cutoff), util_now_wall() - JOB_DEAD_TIMEOUT);
	snprintf(limit, sizeof(limit), "%d", JOB_DEAD_MAX);
	snprintf(threshold, sizeof(threshold), "%d", RECOVER_POISON_LOSSES);
	snprintf(ttl, sizeof(ttl), "%d", RECOVER_POISON_WINDOW);
	snprintf(lttl, sizeof(lttl), "%lld", (long long)(t->lock_ttl * 1000.0));
	/* Only the running job can hold a lock (its start took it). */
	bool locked = running && parsed && t->lock_key;
	char *node = keys_node(t->identity);
	const char *argv[] = {working, KEY_QUEUES, KEY_DEAD, lost, KEY_LEADER, node, raw, queue,
			      KEY_QUEUE_PREFIX, count ? "back" : "front", count ? "1" : "0",
			      threshold, ttl, dead, now, cutoff, limit, t->lease ? t->lease : "",
			      locked ? t->lock_key : "", locked ? j.jid : "",
			      t->lock_lease ? "1" : "0", lttl};
	size_t lens[ARRAY_SIZE(argv)];
	for (size_t i = 0; i < ARRAY_SIZE(argv); i++)
		lens[i] = strlen(argv[i]);
	lens[6] = len; /* the payload: bytes */
	rc = rds_async_eval(r->rds, recover_on_moved, r, LUA_LOSE, 6, 22, argv, lens);
	free(node);
	free(dead);
	free(lost);
	job_free(&j);
	return rc;
}

static void recover_on_listed(struct rds_reply *x, void *priv)
{
	struct recover *r = priv;
	if (!recover_take_reply(r, x))
		return;
	struct task *t = r->head;
	if (rds_type(x) != RDS_STR) { /* empty */
		t->step = STEP_CLEAR;
		recover_next(r);
		return;
	}
	size_t len;
	const char *raw = rds_str(x, &len);
	if (t->gone && t->moving_len == len && !memcmp(t->moving, raw, len)) {
		/* lose.lua found this very job gone, yet it is still there:
		 * reading it again would loop for ever. */
		log_error("recovery cannot take a job out of a working list; leaving it there",
			  LF_STR("node", t->identity), LF_INT("lane", t->lane),
			  LF_INT("bytes", len));
		t->step = STEP_CLEAR;
		recover_next(r);
		return;
	}
	free(t->moving);
	t->moving = xstrndup(raw, len);
	t->moving_len = len;
	char *working = keys_working(t->identity, t->lane);
	if (!recover_move(r, t, working, raw, len))
		r->in_flight = true;
	free(working);
}

static int recover_step(struct recover *r, struct task *t)
{
	char tid[16];
	char *working = keys_working(t->identity, t->lane);
	char *work = keys_work(t->identity), *workers = keys_workers(t->identity);
	int rc;
	snprintf(tid, sizeof(tid), "%d", t->lane);
	if (t->step == STEP_CURRENT) {
		const char *argv[] = {"HGET", work, tid};
		rc = rds_async_call(r->rds, recover_on_current, r, 3, argv, NULL);
	} else if (t->step == STEP_NEXT) {
		/* Newest first: jobs going back to the front are pushed in turn,
		 * so the oldest must go last to end up first. */
		const char *argv[] = {"LINDEX", working, "0"};
		rc = rds_async_call(r->rds, recover_on_listed, r, 3, argv, NULL);
	} else {
		const char *argv[] = {"HDEL", work, tid};
		const char *argv2[] = {"HDEL", workers, tid};
		rc = rds_async_call(r->rds, rds_ignore_reply, NULL, 3, argv, NULL);
		if (!rc)
			rc = rds_async_call(r->rds, recover_on_cleared, r, 3, argv2, NULL);
	}
	free(working);
	free(work);
	free(workers);
	return rc;
}

static void recover_next(struct recover *r)
{
	for (;;) {
		struct task *t = r->head;
		if (!t || r->in_flight || r->waiting)
			return;
		/* Another node's Busy entries are left to expire with its
		 * other keys: clearing them is a write the lease cannot fence. */
		if (t->dropped || (t->lease && t->step == STEP_CLEAR)) {
			recover_task_done(r);
			continue;
		}
		if (rds_async_is_up(r->rds) && !recover_step(r, t))
			r->in_flight = true;
		return;
	}
}

static void recover_enqueue(struct recover *r, struct task *t)
{
	if (r->tail)
		r->tail->next = t;
	else
		r->head = t;
	r->tail = t;
	r->pending++;
	recover_next(r);
}

static struct task *task_new(const char *identity, int lane, bool own, const char *running_jid,
			     enum recover_mode mode, const char *cause, int default_retry)
{
	struct task *t = xcalloc(1, sizeof(*t));
	t->identity = xstrdup(identity);
	t->jid = running_jid ? xstrdup(running_jid) : NULL;
	t->step = running_jid ? STEP_NEXT : STEP_CURRENT; /* known: no Busy entry needed */
	t->lane = lane;
	t->own = own;
	t->mode = mode;
	t->cause = xstrdup(cause);
	t->default_retry = default_retry;
	return t;
}

void recover_lane_locked(struct recover *r, const char *identity, int lane, bool own,
			 const char *running_jid, enum recover_mode mode, const char *cause,
			 int default_retry, const struct recover_lock *lock)
{
	struct task *t = task_new(identity, lane, own, running_jid, mode, cause, default_retry);
	if (lock && lock->key && lock->key[0]) {
		t->lock_key = xstrdup(lock->key);
		t->lock_lease = lock->lease;
		t->lock_ttl = lock->ttl;
	}
	recover_enqueue(r, t);
}

void recover_node_lane(struct recover *r, const char *identity, int lane, const char *lease,
		       const char *cause)
{
	/* A round that comes while a large lane is still being emptied finds
	 * it again: one task per lane is enough. */
	for (struct task *u = r->head; u; u = u->next)
		if (u->lease && !u->dropped && u->lane == lane && !strcmp(u->identity, identity) &&
		    !strcmp(u->lease, lease))
			return;
	struct task *t = task_new(identity, lane, false, NULL, RECOVER_LOST, cause, 0);
	t->lease = xstrdup(lease);
	recover_enqueue(r, t);
}

void recover_drop_nodes(struct recover *r)
{
	int n = 0;
	for (struct task *t = r->head; t; t = t->next)
		if (t->lease && !t->dropped) {
			t->dropped = true;
			n++;
		}
	if (!n)
		return;
	log_warn("leadership lost: recovery of other nodes' jobs stopped",
		 LF_INT("lanes", n));
	if (r->waiting && r->head->dropped) {
		ev_timer_stop(r->loop, &r->retry_w);
		r->waiting = false;
	}
	recover_next(r);
}

void recover_resume(struct recover *r)
{
	ev_timer_stop(r->loop, &r->retry_w);
	r->waiting = false;
	r->in_flight = false;
	recover_next(r);
}
