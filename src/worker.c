/* worker: one job at a time. A job moves atomically from its queue into this
 * worker's working list (batch.lua, or BRPOPLPUSH when idle) and leaves it
 * only in the script call that writes its outcome or puts it back
 * (batch.lua). Redis calls are synchronous with timeouts; the blocking fetch
 * waits at most FETCH_BLOCK seconds, so signals (handled by the libev loop
 * between calls) take effect within that time while idle. This file is the
 * process and its job loop; worker_redis.c is its side of Redis. */
#include "worker.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handler.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "process.h"
#include "proctitle.h"
#include "rds.h"
#include "unique.h"
#include "util.h"
#include "worker_int.h"

/* The title is rewritten only when it changes: back-to-back jobs of one
 * class in a batch would otherwise cost a prctl and a format each. */
static void worker_set_state(struct worker *w, enum sb_state s, const char *detail)
{
	char title[sizeof(w->title)];
	w->a->cell->state = s;
	snprintf(title, sizeof(title), "forq: worker[%d] %s%s%s", w->a->slot,
		 scoreboard_state_name(s), detail ? " " : "", detail ? detail : "");
	if (strcmp(title, w->title)) {
		memcpy(w->title, title, sizeof(title));
		proctitle_set("%s", title);
	}
}

static void worker_idle_state(struct worker *w)
{
	worker_set_state(w, w->stopping ? SB_STOPPING : w->quiet ? SB_QUIET : SB_IDLE, NULL);
}

static void worker_stop(struct worker *w, const char *why)
{
	if (w->stopping)
		return;
	w->stopping = true;
	log_info("worker stopping", LF_STR("reason", why), LF_BOOL("busy", w->busy));
	if (w->busy) {
		/* Finish the job within shutdown_timeout, else give it back. */
		ev_timer_set(&w->shutdown_w, w->a->cfg->shutdown_timeout, 0.0);
		ev_timer_start(w->loop, &w->shutdown_w);
	} else {
		worker_idle_state(w);
	}
	ev_break(w->loop, EVBREAK_ALL);
}

static void worker_on_shutdown_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
	handler_abandon();
}

/* Stops retrying Redis (a stop signal while stopping, or an orphan past
 * shutdown_timeout): the job running is given back, and what is left
 * unwritten stays in the working list, where the master's recovery or the
 * orphan sweep finds it (worker_leave_outcomes). */
static void worker_hurry(struct worker *w)
{
	if (w->busy)
		handler_abandon();
	w->give_up = true;
	ev_break(w->loop, EVBREAK_ALL);
}

static void worker_on_orphan_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	worker_hurry(ev_userdata(loop));
}

/* Nobody will stop this worker now, nor kill it at a deadline: it stops,
 * and gives up on Redis after shutdown_timeout. */
static void worker_orphaned(struct worker *w)
{
	w->orphan = true;
	log_warn("master gone: stopping, giving up on redis after shutdown_timeout",
		 LF_DBL("shutdown_timeout", w->a->cfg->shutdown_timeout));
	ev_timer_set(&w->orphan_w, w->a->cfg->shutdown_timeout, 0.0);
	ev_timer_start(w->loop, &w->orphan_w);
	worker_stop(w, "master gone");
}

static void worker_event(struct worker *w, int event)
{
	plugin_set_event(w->a->plugins, event);
	plugin_set_event(w->own_plugins, event);
}

static void worker_on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = ev_userdata(loop);
	(void)revents;
	switch (s->signum) {
	case SIGTERM:
	case SIGQUIT:
		if (w->stopping)
			worker_hurry(w); /* a second stop: fast stop */
		else
			worker_stop(w, s->signum == SIGTERM ? "TERM" : "QUIT");
		break;
	case SIGTSTP:
	case SIGUSR1:
		if (!w->quiet && !w->stopping) {
			w->quiet = true;
			log_info("worker quiet: no more fetching");
			worker_event(w, FORQ_EVENT_QUIET);
			if (!w->busy)
				worker_idle_state(w);
		}
		break;
	case SIGTTIN:
		log_info("worker state", LF_STR("state", scoreboard_state_name(w->a->cell->state)),
			 LF_STR("class", w->busy ? w->a->cell->job_class : ""),
			 LF_STR("jid", w->busy ? w->a->cell->jid : ""),
			 LF_DBL("uptime", util_now_mono() - w->started),
			 LF_INT("jobs_done", w->a->cell->jobs_done));
		break;
	case SIGWINCH: /* forwarded by the master: the log file was rotated */
		if (log_reopen())
			log_warn("cannot reopen the log file", LF_STR("file", log_file_path()),
				 LF_ERRNO());
		break;
	}
}

static void worker_on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);
	(void)t;
	(void)revents;
	w->a->cell->last_tick = util_now_mono();
	if (!w->orphan && process_parent_is_gone(w->a->master_pid))
		worker_orphaned(w);
}

static void worker_on_metrics_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);
	(void)t;
	(void)revents;
	w->metrics_due = true;
}

static void worker_on_sleep(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

/* Waits up to seconds while still handling signals; a stop cuts it short. */
void worker_sleep(struct worker *w, double seconds)
{
	ev_timer_set(&w->sleep_w, seconds, 0.0);
	ev_timer_start(w->loop, &w->sleep_w);
	ev_run(w->loop, 0);
	ev_timer_stop(w->loop, &w->sleep_w);
}

static void worker_watch_signals(struct worker *w)
{
	struct {
		ev_signal *s;
		int signum;
	} table[] = {
		{&w->sig_term, SIGTERM}, {&w->sig_quit, SIGQUIT}, {&w->sig_tstp, SIGTSTP},
		{&w->sig_usr1, SIGUSR1}, {&w->sig_ttin, SIGTTIN}, {&w->sig_winch, SIGWINCH},
	};
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		ev_signal_init(table[i].s, worker_on_signal, table[i].signum);
		ev_signal_start(w->loop, table[i].s);
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
}

static void worker_fail(struct worker *w, const struct job *j, const char *queue,
			const struct handler_result *res, char *payload, size_t len)
{
	const struct config_job *cj = config_find_job(w->a->cfg, j->job_class);
	const struct plugin_failure *d = &res->detail;
	struct job_failure f = {
		.error_class = res->error_class,
		.error_message = d->error_message ? d->error_message : res->error_message,
		.fetched_queue = queue,
		.default_max = cj && cj->retry >= 0 ? cj->retry : JOB_MAX_RETRIES_DEFAULT,
		.now = util_now_wall(),
		.rnd = util_random(),
		.retry_in = d->retry_in,
		.backtrace_json = d->backtrace_json,
	};
	/* A plugin that carries its own retry policy decides the outcome. */
	static const int forced[] = {[FORQ_DISPOSE_RETRY] = 1 + JOB_OUT_RETRY,
				     [FORQ_DISPOSE_DEAD] = 1 + JOB_OUT_DEAD,
				     [FORQ_DISPOSE_DISCARD] = 1 + JOB_OUT_DISCARD};
	if (d->disposition > FORQ_DISPOSE_DEFAULT && d->disposition <= FORQ_DISPOSE_DISCARD)
		f.forced = forced[d->disposition];
	enum job_outcome out;
	double score;
	char *stored = job_failure_payload(j, &f, &out, &score);
	static const char *const names[] = {"retry", "dead", "discard"};
	log_warn("job failed", LF_STR("jid", j->jid), LF_STR("class", j->job_class),
		 LF_STR("error_class", res->error_class), LF_STR("error", res->error_message),
		 LF_STR("next", names[out]));
	worker_add_outcome(w, payload, len, names[out], stored, score, j->jid, queue);
}

/* A payload that cannot be parsed goes to the dead set as it is, every
 * byte of it (the log shows it up to a NUL, the error says where that is). */
static void worker_bury(struct worker *w, struct fetched *f, const char *why)
{
	log_error("malformed job sent to the dead set", LF_STR("error", why),
		  LF_STR("payload", f->payload));
	w->a->cell->jobs_done++;
	w->a->cell->jobs_failed++;
	worker_add_outcome(w, f->payload, f->len, "dead", xstrndup(f->payload, f->len),
			   util_now_wall(), NULL, f->queue)->stored_len = f->len;
}

/* A job forq cannot run as it is (job_check) goes to the dead set unrun,
 * with the reason as its error, so the Web UI's morgue shows why. */
static void worker_refuse(struct worker *w, const struct job *j, struct fetched *f,
			  const char *why)
{
	struct job_failure jf = {.error_class = "Forq::InvalidJob", .error_message = why,
				 .fetched_queue = f->queue, .now = util_now_wall(),
				 .forced = 1 + JOB_OUT_DEAD};
	enum job_outcome out;
	double score;
	char *stored = job_failure_payload(j, &jf, &out, &score);
	log_error("job sent to the dead set unrun", LF_STR("jid", j->jid),
		  LF_STR("class", j->job_class), LF_STR("error", why));
	w->a->cell->jobs_done++;
	w->a->cell->jobs_failed++;
	worker_add_outcome(w, f->payload, f->len, "dead", stored, score, NULL, f->queue);
}

/* A job with a unique lock type takes its lock before it runs. false: do
 * not run it (a duplicate was dropped, a while_executing conflict went to
 * the schedule set, or a stop came while Redis was away: given back). */
static bool worker_lock(struct worker *w, struct unique_lock *lk, const struct job *j,
			struct fetched *f)
{
	char holder[128];
	int v = -1;
	w->locking = f->payload;
	w->locking_len = f->len;
	while (v < 0) {
		if (w->stopping) {
			worker_add_outcome(w, f->payload, f->len, "requeue", NULL, 0, NULL, f->queue);
			w->locking = NULL;
			return false;
		}
		if (worker_connect(w))
			continue;
		if (!w->locking) { /* no longer in the working list (worker_reconcile) */
			free(f->payload);
			return false;
		}
		v = unique_start(w->r, lk, j->jid, w->k_working, f->payload, holder, sizeof(holder));
		if (v < 0)
			worker_disconnect(w, "unique lock");
	}
	w->locking = NULL;
	if (v == UNIQUE_RUN)
		return true;
	log_info(v == UNIQUE_DROP ? "duplicate unique job dropped"
				  : "unique job runs later: another one is running",
		 LF_STR("jid", j->jid), LF_STR("class", j->job_class),
		 LF_STR("holder", holder), LF_STR("unique", config_unique_name(lk->type)));
	free(f->payload);
	return false;
}

/* After the job: its outcome is written first (unique.h), then its lock
 * released or kept. A stop while Redis is away leaves the lock to its TTL. */
static void worker_unlock(struct worker *w, const struct unique_lock *lk, const char *jid)
{
	const struct outcome *o = &w->outs[w->nouts - 1];
	const char *what = o->what;
	double score = o->score;
	worker_flush(w);
	for (;;) {
		if (!worker_connect(w)) {
			if (!unique_end(w->r, lk, jid, what, score))
				return;
			worker_disconnect(w, "unique unlock");
		}
		if (w->stopping)
			return;
	}
}

/* Sidekiq's Metrics tab counts the run (skmetrics.h) under the class the
 * app knows: ActiveJob's wrapped class, else the payload's class. */
static void worker_count_metrics(struct worker *w, const struct job *j, double seconds,
				 bool failed)
{
	if (!w->a->cfg->sidekiq_metrics)
		return;
	skmetrics_record(&w->metrics, j->wrapped ? j->wrapped : j->job_class,
			 (long long)(seconds * 1000.0), failed);
}

_Static_assert(sizeof(((struct sb_cell *)0)->jid) > JOB_JID_MAX,
	       "the scoreboard carries the jid of every job that runs whole");

/* Runs one job and adds its outcome; takes ownership of f's strings. */
static void worker_process(struct worker *w, struct fetched *f)
{
	struct sb_cell *cell = w->a->cell;
	struct handler_result res;
	struct job j;
	char err[512];
	double t0 = util_now_mono();
	size_t nouts0 = w->nouts;

	if (job_parse(&j, f->payload, f->len, err, sizeof(err))) {
		worker_bury(w, f, err);
		job_free(&j);
		goto out;
	}
	if (job_check(&j, err, sizeof(err))) {
		worker_refuse(w, &j, f, err);
		job_free(&j);
		goto out;
	}
	struct unique_lock lk = {0};
	bool locked = (w->any_unique || j.unique) &&
		      unique_lock_of(w->a->cfg, &j, j.queue[0] ? j.queue : f->queue, &lk);
	if (locked && !worker_lock(w, &lk, &j, f)) {
		unique_lock_free(&lk);
		job_free(&j);
		goto out;
	}
	util_strlcpy(cell->job_class, j.job_class, sizeof(cell->job_class));
	util_strlcpy(cell->jid, j.jid, sizeof(cell->jid));
	if (locked)
		unique_publish(cell, &lk);
	cell->job_started = util_now_wall();
	w->busy = true;
	worker_set_state(w, SB_BUSY, j.job_class);
	log_debug("job started", LF_STR("jid", j.jid), LF_STR("class", j.job_class),
		  LF_STR("queue", f->queue));
	double run0 = util_now_mono();
	handler_run(&w->henv, &j, f->queue, &res);
	w->busy = false;
	ev_timer_stop(w->loop, &w->shutdown_w);
	double t1 = util_now_mono();
	w->last_elapsed = t1 - t0;
	if (res.status == HANDLER_ABANDONED) {
		log_warn("job given back to the front of its queue", LF_STR("jid", j.jid),
			 LF_STR("class", j.job_class));
		worker_add_outcome(w, f->payload, f->len, "requeue", NULL, 0, NULL, f->queue);
	} else {
		cell->jobs_done++;
		worker_count_metrics(w, &j, t1 - run0, res.status != HANDLER_OK);
		if (res.status == HANDLER_OK) {
			if (log_enabled(LOG_INFO))
				log_info("job done", LF_STR("jid", j.jid),
					 LF_STR("class", j.job_class), LF_DBL("elapsed", w->last_elapsed));
			worker_add_outcome(w, f->payload, f->len, "ack", NULL, 0, j.jid, f->queue);
		} else {
			cell->jobs_failed++;
			worker_fail(w, &j, f->queue, &res, f->payload, f->len);
		}
		jobstats_record(w->a->stats, j.job_class, f->queue, w->outs[w->nouts - 1].what,
				w->last_elapsed);
	}
	handler_result_free(&res);
	unique_unpublish(cell);
	cell->jid[0] = '\0'; /* nothing runs now: a death here loses no job */
	if (locked) {
		worker_unlock(w, &lk, j.jid);
		unique_lock_free(&lk);
	}
	job_free(&j);
out:
	/* Outcomes wait until they span BATCH_SPAN of work, counted from the
	 * start of the oldest one's job: a slow job's is recorded at once. */
	if (!nouts0 && w->nouts == 1)
		w->span_start = t0;
	free(f->queue);
	f->queue = f->payload = NULL;
}

/* Jobs fetched but not started go back to the front (stop, quiet). They
 * are pushed newest first, so the oldest ends up at the very front and the
 * queue keeps its order. */
static void worker_return_batch(struct worker *w)
{
	for (size_t i = w->nbatch; i-- > w->ibatch;) {
		struct fetched *f = &w->batch[i];
		worker_add_outcome(w, f->payload, f->len, "requeue", NULL, 0, NULL, f->queue);
		free(f->queue);
	}
	w->ibatch = w->nbatch = 0;
}

/* ---- the loop ------------------------------------------------------------ */

/* How many jobs to fetch: about BATCH_SPAN worth at the last job's pace,
 * so quick jobs share round trips and slow ones are fetched one by one. */
static size_t worker_batch_size(const struct worker *w)
{
	double n = BATCH_SPAN / (w->last_elapsed > 1e-6 ? w->last_elapsed : 1e-6);
	return n < 1 ? 1 : n > BATCH_MAX ? BATCH_MAX : (size_t)n;
}

/* Quick jobs go in batches: one round trip records a batch's outcomes and
 * fetches the next. Outcomes are recorded once they span BATCH_SPAN of
 * work, so a slow job's is recorded at once and nothing waits behind it. */
static void worker_serve(struct worker *w)
{
	while (!w->stopping) {
		ev_run(w->loop, EVRUN_NOWAIT);
		if (w->stopping)
			break;
		if (w->metrics_due)
			worker_flush_metrics(w, false);
		if (w->ibatch < w->nbatch) {
			if (w->quiet) {
				worker_return_batch(w);
				continue;
			}
			worker_process(w, &w->batch[w->ibatch++]);
			if (w->nouts == BATCH_MAX ||
			    (w->nouts && util_now_mono() - w->span_start > BATCH_SPAN))
				worker_flush(w);
			if (w->ibatch == w->nbatch)
				worker_idle_state(w);
			continue;
		}
		w->ibatch = w->nbatch = 0;
		if (w->quiet) {
			worker_flush(w);
			worker_idle_state(w);
			worker_sleep(w, 1.0);
			continue;
		}
		if (worker_connect(w) || w->ibatch < w->nbatch) /* adopted on reconnect */
			continue;
		/* One idle Redis call a second: with a single queue a blocking
		 * fetch alone sees every job, so an idle worker only blocks (1 s);
		 * with several it also tries them all before blocking on one for
		 * 2 s. */
		int got = 0;
		if (!w->idle || w->nouts || w->a->cfg->nqueues > 1)
			got = worker_exchange(w, worker_batch_size(w));
		if (got == 0 && !w->nouts) {
			worker_idle_state(w);
			ev_run(w->loop, EVRUN_NOWAIT);
			if (w->stopping || w->quiet)
				continue;
			struct fetched f = {NULL, NULL, 0};
			got = worker_fetch_blocking(w, &f.queue, &f.payload, &f.len);
			if (got > 0)
				w->batch[w->nbatch++] = f;
		}
		if (got < 0) {
			worker_disconnect(w, "fetch");
			continue;
		}
		w->idle = got == 0;
	}
	worker_return_batch(w);
	worker_flush(w);
	worker_leave_outcomes(w);
	worker_flush_metrics(w, true);
}

static void worker_init_keys(struct worker *w)
{
	const struct config *c = w->a->cfg;
	snprintf(w->tid, sizeof(w->tid), "%d", w->a->lane);
	w->k_working = keys_working(w->a->identity, w->a->lane);
	w->k_work = keys_work(w->a->identity);
	w->k_workers = keys_workers(w->a->identity);
	w->k_proc = keys_process(w->a->identity);
	w->k_queues = xcalloc(c->nqueues, sizeof(*w->k_queues));
	for (size_t i = 0; i < c->nqueues; i++)
		w->k_queues[i] = keys_queue(c->queues[i].name);
	w->order = xcalloc(c->nqueues, sizeof(*w->order));
	for (size_t i = 0; i < c->njobs; i++)
		w->any_unique |= c->jobs[i].unique != UNIQUE_NONE;
}

static void worker_free_keys(struct worker *w)
{
	for (size_t i = 0; i < w->a->cfg->nqueues; i++)
		free(w->k_queues[i]);
	free(w->k_queues);
	free(w->k_working);
	free(w->k_work);
	free(w->k_workers);
	free(w->k_proc);
	free(w->order);
}

static int worker_init_plugins(struct worker *w)
{
	char err[512];
	struct plugin_set *set = w->a->plugins;
	if (!set && w->a->cfg->nplugins) {
		set = w->own_plugins = plugin_set_load(w->a->cfg, err, sizeof(err));
		if (!set)
			goto out_fail;
	}
	if (plugin_set_after_fork(set, err, sizeof(err)))
		goto out_fail;
	return 0;
out_fail:
	log_error("worker cannot start", LF_STR("error", err));
	return -1;
}

static void worker_report_ready(struct worker *w)
{
	char r = 'R';
	if (write(w->a->ready_fd, &r, 1) != 1)
		log_warn("cannot report readiness to the master", LF_ERRNO());
	close(w->a->ready_fd);
}

static void worker_init_loop(struct worker *w)
{
	ev_set_userdata(w->loop, w);
	worker_watch_signals(w);
	ev_timer_init(&w->tick, worker_on_tick, 0.0, WORKER_PARENT_CHECK);
	ev_timer_init(&w->sleep_w, worker_on_sleep, 0.0, 0.0);
	ev_timer_init(&w->shutdown_w, worker_on_shutdown_timer, 0.0, 0.0);
	ev_timer_init(&w->orphan_w, worker_on_orphan_timer, 0.0, 0.0);
	ev_timer_init(&w->metrics_w, worker_on_metrics_timer, SKMETRICS_FLUSH, SKMETRICS_FLUSH);
	w->henv = (struct handler_env){w->loop, w->a->cfg, {w->a->plugins, NULL},
				       &w->a->cell->timeout_armed, &w->a->cell->handler_pid};
}

int worker_main(const struct worker_args *a)
{
	/* Until a job has run, its pace is unknown: fetch one at a time. */
	struct worker w = {.a = a, .started = util_now_mono(), .backoff = RECONNECT_MIN,
			   .last_elapsed = BATCH_SPAN};
	char idx[16];
	int rc = 0;

	log_set_role("worker", a->slot);
	snprintf(idx, sizeof(idx), "%d", a->slot);
	setenv("FORQ_WORKER_INDEX", idx, 1);
	if (a->cfg->environment)
		setenv("FORQ_ENV", a->cfg->environment, 1);
	a->cell->pid = (int32_t)getpid();
	worker_set_state(&w, SB_BOOTING, NULL);
	if (!(w.loop = ev_loop_new(EVFLAG_AUTO))) {
		log_error("cannot create event loop");
		return 1;
	}
	worker_init_loop(&w);
	worker_init_keys(&w);
	process_unblock_signals();
	if (worker_init_plugins(&w)) {
		rc = CONFIG_EXIT_CONFIG;
		goto out;
	}
	w.henv.plugins[1] = w.own_plugins;
	ev_timer_again(w.loop, &w.tick);
	if (a->cfg->sidekiq_metrics)
		ev_timer_start(w.loop, &w.metrics_w);
	worker_on_tick(w.loop, &w.tick, 0);
	if (!w.stopping) {
		worker_report_ready(&w);
		worker_idle_state(&w);
		worker_serve(&w);
		worker_event(&w, FORQ_EVENT_SHUTDOWN);
	}
	log_debug("worker exiting", LF_DBL("uptime", util_now_mono() - w.started));
out:
	rds_close(w.r);
	skmetrics_free(&w.metrics);
	worker_free_keys(&w);
	plugin_set_free(w.own_plugins);
	ev_loop_destroy(w.loop);
	return rc;
}
