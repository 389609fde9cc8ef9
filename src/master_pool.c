/* master_pool: the worker slots. Workers live in stable slots; a slot's
 * replacement reuses its index and its scoreboard cell is fresh. Readiness
 * comes over a pipe, exits through SIGCHLD (master.c), and each exit
 * decides respawn, backoff or giving up. */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "daemon.h"
#include "leader.h"
#include "metrics.h"
#include "process.h"
#include "proctitle.h"
#include "sdnotify.h"
#include "sweep.h"
#include "unique.h"
#include "util.h"
#include "worker.h"
#include "master_int.h"

const char *master_state_name(const struct master *m)
{
	static const char *const names[] = {"running", "quiet", "stopping"};
	return names[m->state];
}

int master_count_children(const struct master *m, bool ready_only)
{
	int n = 0;
	for (struct child *c = m->children; c; c = c->next)
		if (!ready_only || c->state == C_READY)
			n++;
	return n;
}

void master_update_title(struct master *m)
{
	const char *tag = m->cfg->tag;
	proctitle_set("forq: master%s%s%s %d/%d workers%s%s", tag ? " [" : "", tag ? tag : "",
		      tag ? "]" : "", master_count_children(m, true), m->target,
		      m->state == M_RUNNING ? "" : " ", m->state == M_RUNNING ? "" : master_state_name(m));
	master_notify_update(m);
}

void master_signal_children(struct master *m, int sig)
{
	for (struct child *c = m->children; c; c = c->next)
		kill(c->pid, sig);
}

void master_kill_children(struct master *m)
{
	for (struct child *c = m->children; c; c = c->next) {
		log_warn("killing worker that did not stop in time", LF_INT("worker", c->slot),
			 LF_INT("child", c->pid));
		process_signal_group(c->pid, SIGKILL);
	}
}

static void master_on_kill_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = ev_userdata(loop);
	(void)t;
	(void)revents;
	master_kill_children(m);
}

/* ---- children: readiness and exit ---------------------------------- */

static struct child *master_find_child(struct master *m, pid_t pid)
{
	for (struct child *c = m->children; c; c = c->next)
		if (c->pid == pid)
			return c;
	return NULL;
}

static void master_unlink_child(struct master *m, struct child *c)
{
	for (struct child **p = &m->children; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	if (c->ready_fd >= 0) {
		ev_io_stop(m->loop, &c->ready_w);
		close(c->ready_fd);
		c->ready_fd = -1;
	}
}

/* Adds what a worker counted since the last look to the pending stats. */
void master_collect_stats(struct master *m, struct child *c)
{
	struct sb_cell *cell = scoreboard_cell(&m->sb, c->cell);
	uint32_t done = cell->jobs_done, failed = cell->jobs_failed;
	m->stat_processed += (uint32_t)(done - c->flushed_done);
	m->stat_failed += (uint32_t)(failed - c->flushed_failed);
	c->flushed_done = done;
	c->flushed_failed = failed;
}

/* A dead worker's lane (its working list) is recovered before the lane can
 * be used again; recover_done releases it. */
static void master_recover(struct master *m, struct child *c, int status)
{
	struct sb_cell *cell = scoreboard_cell(&m->sb, c->cell);
	enum recover_mode mode = RECOVER_LOST;
	char cause[64];
	int retry = -1;
	master_collect_stats(m, c);
	metrics_fold_lane(m->metrics, c->cell); /* before the lane can be reused */
	process_describe_status(status, cause, sizeof(cause));
	/* Its exec handler must not run on while the job is given to another
	 * worker: the whole process group goes. */
	if (cell->handler_pid > 0)
		process_signal_group(cell->handler_pid, SIGKILL);
	if (cell->timeout_armed && WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		const struct config_job *cj = config_find_job(m->cfg, cell->job_class);
		mode = RECOVER_TIMEOUT;
		retry = cj ? cj->retry : -1;
	} else if (m->state == M_STOPPING) {
		mode = RECOVER_FRONT;
	}
	cell->pid = -1; /* reserved until recovered */
	int32_t hold = cell->lock_hold;
	struct recover_lock lock = {hold ? cell->lock_key : NULL, hold & UNIQUE_HOLD_LOCK,
				    cell->lock_ttl};
	recover_lane_locked(m->rec, m->identity, c->cell, true, cell->jid, mode, cause,
			    retry >= 0 ? retry : JOB_MAX_RETRIES_DEFAULT, &lock);
}

void master_on_recovered(void *priv, int lane)
{
	struct master *m = priv;
	if (lane >= 0)
		scoreboard_release(&m->sb, lane);
	master_maybe_finish(m);
}

static void master_retire(struct child *c, const char *why)
{
	if (!c || c->state == C_RETIRING)
		return;
	c->state = C_RETIRING;
	log_info("stopping worker", LF_INT("worker", c->slot), LF_INT("child", c->pid),
		 LF_STR("reason", why));
	kill(c->pid, SIGTERM);
}

static void master_child_ready(struct master *m, struct child *c)
{
	struct slot *s = &m->slots[c->slot];
	if (c->state != C_STARTING)
		return;
	c->state = C_READY;
	c->ready_at = util_now_mono();
	m->any_ready = true;
	master_recycle_on_ready(m, c);
	log_debug("worker ready", LF_INT("worker", c->slot), LF_INT("child", c->pid),
		  LF_DBL("boot", c->ready_at - c->started));
	if (s->next == c) {
		/* Replacement first: the old worker stops only now. */
		static const char *const why[] = {"crash", "rolling restart", "max_rss", "max_jobs"};
		_Static_assert(ARRAY_SIZE(why) == RESTART_CAUSES, "why");
		struct child *old = s->cur;
		s->cur = c;
		s->next = NULL;
		m->restarts[s->next_cause]++;
		master_retire(old, why[s->next_cause]);
	}
	master_update_title(m);
	master_roll_step(m);
}

static void master_on_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct child *c = w->data;
	struct master *m = ev_userdata(loop);
	char buf[16];
	(void)revents;
	ssize_t n = read(c->ready_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0 && buf[0] == 'R')
		master_child_ready(m, c);
	/* One message per life; EOF or the byte itself ends the conversation. */
	ev_io_stop(loop, &c->ready_w);
	close(c->ready_fd);
	c->ready_fd = -1;
}

static void master_check_fail_fast(struct master *m)
{
	int failed = 0, fatal = 0;
	for (int i = 0; i < m->target; i++) {
		failed += m->slots[i].initial_failed;
		fatal += m->slots[i].fatal;
	}
	if (fatal == m->target && !master_count_children(m, false)) {
		log_error("every worker exited with a configuration error; giving up");
		m->exit_code = CONFIG_EXIT_CONFIG;
	} else if (!m->any_ready && failed >= m->initial_slots) {
		log_error("every initial worker died before becoming ready; giving up");
		m->exit_code = 1;
	} else {
		return;
	}
	m->state = M_STOPPING;
	master_notify_stopping(m);
	leader_resign(m->leader);
	daemon_set_stop(m->daemons);
	master_signal_children(m, SIGTERM);
	ev_timer_stop(m->loop, &m->kill_w);
	ev_timer_set(&m->kill_w, FAST_STOP_GRACE, 0.0);
	ev_timer_start(m->loop, &m->kill_w);
	for (int i = 0; i < CONFIG_PROCESSES_MAX; i++)
		ev_timer_stop(m->loop, &m->slots[i].respawn_w);
	master_maybe_finish(m);
}

/* Decides what a slot does after its serving worker exited. */
static void master_slot_lost(struct master *m, struct slot *s, struct child *c, int status)
{
	bool was_ready = c->ready_at > 0;
	double lifetime = util_now_mono() - c->started;

	if (WIFEXITED(status) && WEXITSTATUS(status) == CONFIG_EXIT_CONFIG) {
		log_error("worker exited with a configuration error; not respawning it",
			  LF_INT("worker", s->index));
		s->fatal = true;
	}
	if (!was_ready && !m->any_ready && s->index < m->initial_slots)
		s->initial_failed = true;
	master_check_fail_fast(m);
	if (m->state != M_RUNNING || s->fatal || s->index >= m->target)
		return;
	m->restarts[RESTART_CRASH]++; /* respawned now or after a backoff */
	if (was_ready && !backoff_is_quick_death(lifetime)) {
		s->quick_deaths = 0;
		master_spawn(m, s, false);
		return;
	}
	/* The first young death restarts at once, as Kubernetes and s6 do: one
	 * unlucky kill is not a crash loop. From the second on, back off. */
	s->quick_deaths++;
	double delay = backoff_respawn_delay(s->quick_deaths - 1, util_random());
	if (delay <= 0.0) {
		log_warn("worker died soon after start; respawning at once",
			 LF_INT("worker", s->index), LF_DBL("lifetime", lifetime));
		master_spawn(m, s, false);
		return;
	}
	log_warn("worker died soon after start; respawn delayed", LF_INT("worker", s->index),
		 LF_INT("deaths", s->quick_deaths), LF_DBL("delay", delay),
		 LF_DBL("lifetime", lifetime));
	ev_timer_set(&s->respawn_w, delay, 0.0);
	ev_timer_start(m->loop, &s->respawn_w);
}

static void master_child_exited(struct master *m, struct child *c, int status)
{
	struct slot *s = &m->slots[c->slot];
	char how[64];
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	bool expected = c->state == C_RETIRING || m->state == M_STOPPING;

	master_unlink_child(m, c);
	master_recover(m, c, status);
	process_describe_status(status, how, sizeof(how));
	log_at(clean || expected ? LOG_INFO : LOG_WARN, "worker exited", LF_INT("worker", c->slot),
	       LF_INT("child", c->pid), LF_STR("status", how),
	       LF_DBL("lifetime", util_now_mono() - c->started));
	if (s->next == c && s->next_cause != RESTART_ROLLING) {
		/* A recycle's replacement: keep the old worker, back off. */
		s->next = NULL;
		s->recycle_streak++;
		s->recycle_not_before = util_now_mono() + 5.0 * s->recycle_streak;
		log_error("replacement worker died before becoming ready; old worker kept",
			  LF_INT("worker", s->index),
			  LF_STR("reason", master_restart_cause_name(s->next_cause)));
	} else if (s->next == c) {
		s->next = NULL;
		log_error("replacement worker died before becoming ready; rolling restart "
			  "aborted, old workers kept", LF_INT("worker", s->index));
		for (struct child *o = m->children; o; o = o->next)
			o->gen = m->gen; /* nothing older is left to replace */
		m->rolling = false;
	} else if (s->cur == c) {
		s->cur = NULL;
		s->restarts++;
		master_slot_lost(m, s, c, status);
	}
	free(c);
}

void master_reap(struct master *m)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = master_find_child(m, pid);
		if (!c && daemon_set_reap(m->daemons, pid, status))
			continue;
		if (!c) {
			/* An orphan we inherited as PID 1 or subreaper: reaped, never
			 * mistaken for a worker. */
			log_debug("reaped a process that is not a worker", LF_INT("child", pid));
			continue;
		}
		master_child_exited(m, c, status);
	}
	if (pid < 0 && errno != ECHILD)
		log_warn("waitpid failed", LF_ERRNO());
	master_update_title(m);
	if (m->state == M_STOPPING)
		master_maybe_finish(m);
	else
		master_roll_step(m);
}

/* ---- spawning ------------------------------------------------------- */

struct spawn_ctx {
	struct master *m;
	struct child *c;
	int ready_wfd;
};

/* In a child (worker or daemon): drop everything of the master's that must
 * not live on. */
void master_forget_in_child(void *priv)
{
	struct master *m = priv;
	for (struct child *c = m->children; c; c = c->next)
		if (c->ready_fd >= 0)
			close(c->ready_fd);
	daemon_set_close_fds(m->daemons);
	master_http_forget_in_child(m);
	for (size_t i = 0; i < ARRAY_SIZE(m->sigs); i++)
		ev_signal_stop(m->loop, &m->sigs[i]);
	sdnotify_forget_in_child(m->notify, m->loop);
	ev_loop_destroy(m->loop); /* closes our copy of the epoll and wakeup fds */
	rds_async_forget(m->rds);  /* closes our copy of the master's socket */
	m->loop = NULL;
}

/* In the child: become a worker. Signals are blocked until the worker's
 * loop owns them. */
static int master_child_main(void *arg)
{
	struct spawn_ctx *x = arg;
	struct master *m = x->m;
	master_forget_in_child(m);
	struct worker_args wa = {
		.cfg = m->cfg,
		.redis = &m->url,
		.identity = m->identity,
		.plugins = m->plugins,
		.cell = scoreboard_cell(&m->sb, x->c->cell),
		.stats = metrics_lane(m->metrics, x->c->cell),
		.slot = x->c->slot,
		.lane = x->c->cell,
		.ready_fd = x->ready_wfd,
		.master_pid = m->pid,
	};
	return worker_main(&wa);
}

void master_spawn(struct master *m, struct slot *s, bool replacement)
{
	int fds[2];
	struct child *c;

	if (pipe2(fds, O_CLOEXEC)) {
		log_error("pipe failed; will retry", LF_INT("worker", s->index), LF_ERRNO());
		goto out_retry;
	}
	c = xcalloc(1, sizeof(*c));
	c->m = m;
	c->slot = s->index;
	c->gen = m->gen;
	c->ready_fd = fds[0];
	c->started = util_now_mono();
	c->cell = scoreboard_claim(&m->sb, 0, s->index);
	if (c->cell < 0) {
		/* Every lane is held by a worker or awaits its recovery. */
		log_error("no free lane (lanes await recovery while redis is away); will retry",
			  LF_INT("worker", s->index));
		close(fds[0]);
		close(fds[1]);
		free(c);
		goto out_retry;
	}
	struct spawn_ctx x = {m, c, fds[1]};
	c->pid = process_spawn(master_child_main, &x);
	close(fds[1]);
	if (c->pid < 0) {
		log_error("fork failed; will retry", LF_INT("worker", s->index), LF_ERRNO());
		close(fds[0]);
		scoreboard_release(&m->sb, c->cell);
		free(c);
		goto out_retry;
	}
	scoreboard_cell(&m->sb, c->cell)->pid = c->pid;
	c->next = m->children;
	m->children = c;
	ev_io_init(&c->ready_w, master_on_ready, c->ready_fd, EV_READ);
	c->ready_w.data = c;
	ev_io_start(m->loop, &c->ready_w);
	if (replacement)
		s->next = c;
	else
		s->cur = c;
	log_info("worker started", LF_INT("worker", s->index), LF_INT("child", c->pid),
		 LF_BOOL("replacement", replacement));
	master_update_title(m);
	return;
out_retry:
	ev_timer_set(&s->respawn_w, 1.0, 0.0);
	ev_timer_start(m->loop, &s->respawn_w);
}

static void master_on_respawn(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct slot *s = t->data;
	struct master *m = ev_userdata(loop);
	(void)revents;
	if (m->state == M_RUNNING && !s->cur && s->index < m->target && !s->fatal)
		master_spawn(m, s, false);
}

/* ---- rolling restart, resize ---------------------------------------- */

/* One slot at a time: start a replacement for the first ready worker of an
 * older generation; its readiness retires the old one and calls us again. */
void master_roll_step(struct master *m)
{
	if (m->state != M_RUNNING || !m->rolling)
		return;
	for (int i = 0; i < m->target; i++)
		if (m->slots[i].next)
			return;
	for (int i = 0; i < m->target; i++) {
		struct slot *s = &m->slots[i];
		if (s->cur && s->cur->state == C_READY && s->cur->gen < m->gen) {
			s->next_cause = RESTART_ROLLING;
			master_spawn(m, s, true);
			return;
		}
	}
	for (int i = 0; i < m->target; i++) {
		struct slot *s = &m->slots[i];
		if (s->cur && s->cur->gen < m->gen)
			return; /* still booting; its readiness calls us again */
	}
	m->rolling = false;
	log_info("rolling restart complete", LF_INT("workers", m->target));
	master_notify_update(m); /* a reload is done now */
}

void master_start_roll(struct master *m, const char *why)
{
	if (m->state != M_RUNNING) {
		log_warn("rolling restart ignored", LF_STR("reason", why),
			 LF_STR("state", master_state_name(m)));
		return;
	}
	m->gen++;
	m->rolling = true;
	log_info("rolling restart", LF_STR("reason", why), LF_INT("workers", m->target));
	master_roll_step(m);
}

void master_resize(struct master *m, int target)
{
	int old = m->target;
	m->target = target;
	if (target == old)
		return;
	log_info("resizing worker pool", LF_INT("from", old), LF_INT("to", target));
	for (int i = target; i < old; i++) {
		struct slot *s = &m->slots[i];
		ev_timer_stop(m->loop, &s->respawn_w);
		master_retire(s->cur, "pool shrunk");
		master_retire(s->next, "pool shrunk");
		s->cur = s->next = NULL;
	}
	for (int i = old; i < target; i++) {
		struct slot *s = &m->slots[i];
		s->quick_deaths = 0;
		s->fatal = false;
		if (m->state == M_RUNNING && !s->cur)
			master_spawn(m, s, false);
	}
	master_update_title(m);
}

void master_init_slots(struct master *m)
{
	for (int i = 0; i < CONFIG_PROCESSES_MAX; i++) {
		struct slot *s = &m->slots[i];
		s->m = m;
		s->index = i;
		ev_timer_init(&s->respawn_w, master_on_respawn, 0.0, 0.0);
		s->respawn_w.data = s;
	}
	ev_timer_init(&m->kill_w, master_on_kill_timer, 0.0, 0.0);
}
