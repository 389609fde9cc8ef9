/* master: one libev loop, one process-wide struct. Signals arrive only as
 * libev watchers; the order of handling within a loop turn is fixed by
 * watcher priority (stop/quiet/reload before reaping), as nginx fixes its
 * order (reap, terminate, quit, reload). Workers live in stable slots; a
 * slot's replacement reuses its index and its scoreboard cell is fresh. */
#include "master.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "cpus.h"
#include "cron.h"
#include "daemon.h"
#include "ident.h"
#include "job.h"
#include "keys.h"
#include "leader.h"
#include "log.h"
#include "pidfile.h"
#include "plugin.h"
#include "privs.h"
#include "poller.h"
#include "process.h"
#include "proctitle.h"
#include "rds.h"
#include "recover.h"
#include "registry.h"
#include "scoreboard.h"
#include "sweep.h"
#include "unique.h"
#include "util.h"
#include "worker.h"

#define HARD_KILL_GRACE 3.0 /* seconds after shutdown_timeout before KILL */
#define FAST_STOP_GRACE 2.0 /* seconds after a second stop signal before KILL */
#define LEAVE_TIMEOUT 2.0   /* seconds to wait for Redis when leaving */

enum master_state { M_RUNNING, M_QUIET, M_STOPPING };
enum child_state { C_STARTING, C_READY, C_RETIRING };

struct master;

struct child {
	struct master *m;
	struct child *next;
	pid_t pid;
	int slot;
	int cell;
	enum child_state state;
	unsigned gen; /* roll generation it was started for */
	double started, ready_at;
	int ready_fd;
	ev_io ready_w;
	uint32_t flushed_done, flushed_failed; /* stats already counted */
};

struct slot {
	struct master *m;
	int index;
	struct child *cur;  /* the worker serving this slot */
	struct child *next; /* a replacement starting during a rolling restart */
	unsigned quick_deaths;
	unsigned restarts;
	bool initial_failed; /* first worker died before ever becoming ready */
	bool fatal;          /* a worker exited 78: not respawned */
	ev_timer respawn_w;
};

struct master {
	struct ev_loop *loop;
	struct config *cfg;
	const struct cli *cli;
	struct plugin_set *plugins; /* prefork only */
	char *pidfile;              /* as written at start */
	struct scoreboard sb;
	enum master_state state;
	int stop_requests;
	int exit_code;
	pid_t pid;
	double started;
	int target;        /* desired number of workers */
	int initial_slots; /* workers started at boot, for the fail-fast rule */
	bool any_ready;
	unsigned gen;      /* bumped by USR2/HUP; older workers get replaced */
	bool rolling;
	struct child *children;
	struct slot slots[CONFIG_PROCESSES_MAX];
	ev_signal sigs[10];
	ev_timer kill_w;
	/* Redis side: this node as a Sidekiq process */
	char identity[320];
	struct rdsurl url;
	struct rds_async *rds;
	struct registry *reg;
	struct poller *poller;
	struct recover *rec;
	struct sweep *sweep;
	struct leader *leader;
	struct cron *cron;
	struct daemon_set *daemons;
	struct unique *uniq; /* renews the unique-job leases of busy workers */
	ev_timer beat_w, leave_w;
	long long stat_processed, stat_failed; /* not yet flushed to Redis */
	bool leaving;
};

static void master_spawn(struct master *m, struct slot *s, bool replacement);
static void master_roll_step(struct master *m);
static void master_maybe_finish(struct master *m);

static const char *master_state_name(const struct master *m)
{
	static const char *const names[] = {"running", "quiet", "stopping"};
	return names[m->state];
}

static int master_count_children(const struct master *m, bool ready_only)
{
	int n = 0;
	for (struct child *c = m->children; c; c = c->next)
		if (!ready_only || c->state == C_READY)
			n++;
	return n;
}

static void master_update_title(struct master *m)
{
	const char *tag = m->cfg->tag;
	proctitle_set("forq: master%s%s%s %d/%d workers%s%s", tag ? " [" : "", tag ? tag : "",
		      tag ? "]" : "", master_count_children(m, true), m->target,
		      m->state == M_RUNNING ? "" : " ", m->state == M_RUNNING ? "" : master_state_name(m));
}

static void master_signal_children(struct master *m, int sig)
{
	for (struct child *c = m->children; c; c = c->next)
		kill(c->pid, sig);
}

static void master_kill_children(struct master *m)
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
static void master_collect_stats(struct master *m, struct child *c)
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

static void master_on_recovered(void *priv, int lane)
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
	log_debug("worker ready", LF_INT("worker", c->slot), LF_INT("child", c->pid),
		  LF_DBL("boot", c->ready_at - c->started));
	if (s->next == c) {
		/* Replacement first: the old worker stops only now. */
		struct child *old = s->cur;
		s->cur = c;
		s->next = NULL;
		master_retire(old, "rolling restart");
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
	if (s->next == c) {
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

static void master_reap(struct master *m)
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
static void master_forget_in_child(void *priv)
{
	struct master *m = priv;
	for (struct child *c = m->children; c; c = c->next)
		if (c->ready_fd >= 0)
			close(c->ready_fd);
	daemon_set_close_fds(m->daemons);
	for (size_t i = 0; i < ARRAY_SIZE(m->sigs); i++)
		ev_signal_stop(m->loop, &m->sigs[i]);
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
		.slot = x->c->slot,
		.lane = x->c->cell,
		.ready_fd = x->ready_wfd,
		.master_pid = m->pid,
	};
	return worker_main(&wa);
}

static void master_spawn(struct master *m, struct slot *s, bool replacement)
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
static void master_roll_step(struct master *m)
{
	if (m->state != M_RUNNING || !m->rolling)
		return;
	for (int i = 0; i < m->target; i++)
		if (m->slots[i].next)
			return;
	for (int i = 0; i < m->target; i++) {
		struct slot *s = &m->slots[i];
		if (s->cur && s->cur->state == C_READY && s->cur->gen < m->gen) {
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
}

static void master_start_roll(struct master *m, const char *why)
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

static void master_resize(struct master *m, int target)
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

static bool strlists_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

static void master_reload(struct master *m)
{
	struct config_error err;
	struct config *nc = config_load(m->cli->config_path, m->cli->ov, m->cli->nov, &err);
	if (!nc) {
		log_error("reload failed; keeping the running configuration",
			  LF_STR("where", err.where), LF_STR("error", err.msg));
		return;
	}
	if (nc->processes_auto)
		nc->processes = cpus_usable();
	if (m->cfg->prefork && (!nc->prefork || !strlists_equal(m->cfg->plugins, m->cfg->nplugins,
								  nc->plugins, nc->nplugins)))
		log_warn("preforked plugins cannot change on reload; restart forq to change them");
	/* Leases already granted were sized by the running values, and the
	 * renewals and fences that keep them safe are paced by them too. */
	if (nc->unique_lease != m->cfg->unique_lease || nc->daemon_ttl != m->cfg->daemon_ttl) {
		log_warn("unique_lease and daemon_ttl cannot change on reload; restart forq");
		nc->unique_lease = m->cfg->unique_lease;
		nc->daemon_ttl = m->cfg->daemon_ttl;
	}
	/* Every key, and the lists of the jobs running now, are under the
	 * namespace set at start (keys.h): it stays for the process's life. */
	if (strcmp(nc->namespace ? nc->namespace : "", keys_namespace())) {
		log_warn("namespace cannot change on reload; restart forq",
			 LF_STR("namespace", keys_namespace()));
		free(nc->namespace);
		nc->namespace = m->cfg->namespace ? xstrdup(m->cfg->namespace) : NULL;
	}
	if (nc->prefork != m->cfg->prefork) {
		if (!m->cfg->prefork)
			log_warn("prefork cannot be turned on by a reload; restart forq");
		nc->prefork = m->cfg->prefork; /* what the master holds decides */
	}
	log_setup(nc->log_level, nc->log_format);
	log_info("configuration reloaded", LF_STR("file", nc->path ? nc->path : "(none)"),
		 LF_INT("processes", nc->processes));
	/* Preforked plugins stay as loaded; keep their list so workers and
	 * later reloads see what is really in memory. */
	if (m->cfg->prefork) {
		char **p = nc->plugins;
		size_t n = nc->nplugins;
		nc->plugins = m->cfg->plugins;
		nc->nplugins = m->cfg->nplugins;
		m->cfg->plugins = p;
		m->cfg->nplugins = n;
	}
	/* cron keeps pointers into the configuration: switch before freeing */
	char cerr[512];
	if (cron_reconfigure(m->cron, nc, cerr, sizeof(cerr)))
		log_error("cron entries not reloaded; none run until the next reload",
			  LF_STR("error", cerr));
	config_free(m->cfg);
	m->cfg = nc;
	registry_reconfigure(m->reg, nc);
	daemon_set_reconfigure(m->daemons, nc);
	if (m->state != M_RUNNING) {
		m->target = nc->processes;
		return;
	}
	m->gen++; /* workers started by the resize below are already new */
	master_resize(m, nc->processes);
	m->rolling = true;
	master_roll_step(m);
}

/* ---- signals ---------------------------------------------------------- */

static void master_stop(struct master *m, int signum)
{
	m->stop_requests++;
	if (m->stop_requests == 1) {
		double grace = m->cfg->shutdown_timeout + HARD_KILL_GRACE;
		m->state = M_STOPPING;
		leader_resign(m->leader);
		daemon_set_stop(m->daemons);
		log_info("graceful stop", LF_STR("signal", sigabbrev_np(signum)),
			 LF_INT("workers", master_count_children(m, false)),
			 LF_DBL("kill_after", grace));
		for (int i = 0; i < CONFIG_PROCESSES_MAX; i++)
			ev_timer_stop(m->loop, &m->slots[i].respawn_w);
		master_signal_children(m, SIGTERM);
		ev_timer_stop(m->loop, &m->kill_w);
		ev_timer_set(&m->kill_w, grace, 0.0);
	} else if (m->stop_requests == 2) {
		log_warn("fast stop: workers abandon their jobs now",
			 LF_STR("signal", sigabbrev_np(signum)));
		/* A worker's second TERM means "give up the job and exit". */
		master_signal_children(m, SIGTERM);
		ev_timer_stop(m->loop, &m->kill_w);
		ev_timer_set(&m->kill_w, FAST_STOP_GRACE, 0.0);
	} else {
		log_warn("immediate stop", LF_STR("signal", sigabbrev_np(signum)));
		master_kill_children(m);
		daemon_set_kill(m->daemons);
		return;
	}
	master_update_title(m);
	if (m->children)
		ev_timer_start(m->loop, &m->kill_w);
	master_maybe_finish(m);
}

static void master_quiet(struct master *m, int signum)
{
	if (m->state != M_RUNNING)
		return;
	m->state = M_QUIET;
	m->rolling = false;
	log_info("quiet: workers stop fetching; no respawns",
		 LF_STR("signal", sigabbrev_np(signum)));
	for (int i = 0; i < CONFIG_PROCESSES_MAX; i++)
		ev_timer_stop(m->loop, &m->slots[i].respawn_w);
	leader_resign(m->leader); /* another node takes over within about a second */
	daemon_set_quiet(m->daemons);
	poller_stop(m->poller); /* Sidekiq's quiet stops its poller too */
	registry_beat(m->reg);  /* show quiet in the Web UI now, not in 5 s */
	master_signal_children(m, SIGTSTP);
	master_update_title(m);
}

/* Sidekiq's TTIN: one line per worker, then each worker logs its own. */
static void master_dump(struct master *m)
{
	double now_mono = util_now_mono(), now = util_now_wall();
	log_info("worker table", LF_STR("state", master_state_name(m)),
		 LF_INT("workers", master_count_children(m, false)), LF_INT("target", m->target),
		 LF_DBL("uptime", now_mono - m->started));
	for (int i = 0; i < m->target; i++) {
		struct slot *s = &m->slots[i];
		struct child *c = s->cur;
		if (!c) {
			log_info("worker", LF_INT("worker", i), LF_INT("child", 0),
				 LF_STR("state", s->fatal ? "failed" : "respawning"),
				 LF_INT("restarts", s->restarts));
			continue;
		}
		struct sb_cell *cell = scoreboard_cell(&m->sb, c->cell);
		bool busy = cell->state == SB_BUSY;
		log_info("worker", LF_INT("worker", i), LF_INT("child", c->pid),
			 LF_STR("state", scoreboard_state_name(cell->state)),
			 LF_STR("class", busy ? cell->job_class : ""),
			 LF_STR("jid", busy ? cell->jid : ""),
			 LF_DBL("runtime", busy ? now - cell->job_started : 0.0),
			 LF_INT("jobs_done", cell->jobs_done), LF_INT("restarts", s->restarts),
			 LF_DBL("uptime", now_mono - c->started));
	}
	daemon_set_dump(m->daemons);
	master_signal_children(m, SIGTTIN);
}

static void master_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct master *m = ev_userdata(loop);
	(void)revents;
	switch (w->signum) {
	case SIGTERM:
	case SIGINT:
	case SIGQUIT:
		master_stop(m, w->signum);
		break;
	case SIGTSTP:
	case SIGUSR1:
		master_quiet(m, w->signum);
		break;
	case SIGTTIN:
		master_dump(m);
		break;
	case SIGUSR2:
		master_start_roll(m, "USR2");
		break;
	case SIGHUP:
		master_reload(m);
		break;
	case SIGCHLD:
		master_reap(m);
		break;
	case SIGTTOU:
		log_info("TTOU ignored (forq does not resize on signals; use HUP)");
		break;
	}
}

static void master_watch_signals(struct master *m)
{
	static const int signums[] = {SIGTERM, SIGINT, SIGQUIT, SIGTSTP, SIGUSR1, SIGTTIN,
				      SIGUSR2, SIGHUP, SIGTTOU, SIGCHLD};
	_Static_assert(ARRAY_SIZE(signums) <= ARRAY_SIZE(((struct master *)0)->sigs), "sigs");
	for (size_t i = 0; i < ARRAY_SIZE(signums); i++) {
		ev_signal *w = &m->sigs[i];
		ev_signal_init(w, master_on_signal, signums[i]);
		/* Reaping last in a loop turn: a TERM that arrived together with a
		 * death must be seen before deciding to respawn. */
		ev_set_priority(w, signums[i] == SIGCHLD ? EV_MINPRI : EV_MAXPRI);
		ev_signal_start(m->loop, w);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGWINCH, SIG_IGN);
}

/* ---- Redis side: registry, poller, leaving ------------------------------ */

static long proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void master_registry_state(void *priv, struct registry_state *st)
{
	struct master *m = priv;
	st->rss_kb = proc_rss_kb(m->pid);
	for (struct child *c = m->children; c; c = c->next) {
		st->busy += scoreboard_cell(&m->sb, c->cell)->state == SB_BUSY;
		st->rss_kb += proc_rss_kb(c->pid);
		master_collect_stats(m, c);
	}
	st->concurrency = m->target;
	st->quiet = m->state != M_RUNNING;
	st->processed = m->stat_processed;
	st->failed = m->stat_failed;
}

static void master_registry_flushed(void *priv, long long processed, long long failed)
{
	struct master *m = priv;
	m->stat_processed -= processed;
	m->stat_failed -= failed;
}

/* Signals from the Web UI's Quiet/Stop buttons and the API. */
static void master_registry_signal(void *priv, const char *name)
{
	struct master *m = priv;
	log_info("signal from redis", LF_STR("signal", name));
	if (!strcmp(name, "TSTP") || !strcmp(name, "USR1"))
		master_quiet(m, SIGTSTP);
	else if (!strcmp(name, "TERM") || !strcmp(name, "INT"))
		master_stop(m, SIGTERM);
	else if (!strcmp(name, "TTIN"))
		master_dump(m);
	else
		log_warn("unknown signal from redis ignored", LF_STR("signal", name));
}

static void master_on_beat(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = ev_userdata(loop);
	(void)t;
	(void)revents;
	registry_beat(m->reg);
}

static void master_on_redis(bool up, void *priv)
{
	struct master *m = priv;
	if (!up)
		return;
	registry_beat(m->reg);
	recover_resume(m->rec);
	if (m->leaving)
		master_maybe_finish(m);
}

static void master_left(void *priv)
{
	struct master *m = priv;
	ev_break(m->loop, EVBREAK_ALL);
}

static void master_on_leave_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	log_warn("redis did not answer; leaving without deregistering");
	ev_break(loop, EVBREAK_ALL);
}

/* Stopping ends once every worker is gone and every lane recovered: then
 * the last stats go out and the node leaves the registry (bounded wait). */
static void master_maybe_finish(struct master *m)
{
	if (m->state != M_STOPPING || m->children || m->leaving || !daemon_set_is_idle(m->daemons))
		return;
	if (recover_pending(m->rec) && rds_async_is_up(m->rds))
		return; /* master_on_recovered calls us again */
	m->leaving = true;
	poller_stop(m->poller);
	sweep_stop(m->sweep);
	ev_timer_stop(m->loop, &m->beat_w);
	ev_timer_set(&m->leave_w, LEAVE_TIMEOUT, 0.0);
	ev_timer_start(m->loop, &m->leave_w);
	registry_beat(m->reg);
	registry_leave(m->reg, master_left, m);
}

/* At exit, a lane still reserved is one whose recovery never reached Redis
 * (a stop while it was unreachable): its jobs stay in the working list,
 * those whose outcomes were made but not written included, and run again
 * once the sweep finds this node gone. */
static void master_report_left(struct master *m)
{
	long long outcomes = 0, lanes = 0;
	for (size_t i = 0; i < m->sb.nused; i++) {
		const struct sb_cell *cell = scoreboard_cell(&m->sb, (int)i);
		if (cell->pid != -1)
			continue;
		lanes++;
		outcomes += cell->unwritten > 0 ? cell->unwritten : 0;
	}
	if (outcomes)
		log_warn("outcomes not written: redis unreachable; those jobs run again after "
			 "the orphan sweep", LF_INT("outcomes", outcomes), LF_INT("lanes", lanes));
	else if (lanes)
		log_warn("jobs left in working lists: redis unreachable; they run again after "
			 "the orphan sweep", LF_INT("lanes", lanes));
}

/* Leader duties (poller, sweep) follow the lease. */
static void master_on_leader(void *priv, const char *lease)
{
	struct master *m = priv;
	poller_set_lease(m->poller, lease);
	sweep_set_lease(m->sweep, lease);
	cron_set_lease(m->cron, lease);
}

static int master_start_redis(struct master *m)
{
	struct registry_hooks hooks = {master_registry_state, master_registry_signal,
				       master_registry_flushed, m};
	m->rds = rds_async_new(m->loop, &m->url, "master", master_on_redis, m);
	double beat = m->cfg->node_dead_after / 3 < REGISTRY_BEAT ? m->cfg->node_dead_after / 3
								   : REGISTRY_BEAT;
	m->reg = registry_new(m->loop, m->rds, m->identity, m->cfg, util_now_wall(),
			      m->cfg->node_dead_after, &hooks);
	m->poller = poller_new(m->loop, m->rds, REGISTRY_BEAT);
	m->rec = recover_new(m->loop, m->rds, master_on_recovered, m);
	m->sweep = sweep_new(m->loop, m->rds, m->rec, m->identity, m->cfg->sweep_interval,
			     m->cfg->node_dead_after);
	char err[512];
	if (!(m->cron = cron_new(m->loop, m->rds, m->cfg, err, sizeof(err)))) {
		log_error("bad cron entry", LF_STR("error", err));
		return CONFIG_EXIT_CONFIG;
	}
	double renew = m->cfg->leader_renew < m->cfg->leader_ttl / 3 ? m->cfg->leader_renew
								     : m->cfg->leader_ttl / 3;
	m->leader = leader_new(m->loop, m->rds, m->identity, m->cfg->leader_ttl, renew,
			       master_on_leader, m);
	m->daemons = daemon_set_new(m->loop, m->rds, m->identity, m->cfg, m->plugins,
				    master_forget_in_child, m);
	m->uniq = unique_new(m->loop, m->rds, &m->sb, m->cfg->unique_lease);
	/* The node key must be refreshed well within its TTL. */
	ev_timer_init(&m->beat_w, master_on_beat, beat, beat);
	ev_timer_start(m->loop, &m->beat_w);
	ev_timer_init(&m->leave_w, master_on_leave_timeout, 0.0, 0.0);
	return 0;
}

/* ---- start and run ---------------------------------------------------- */

static int master_prepare(struct master *m)
{
	char err[512];
	if (rdsurl_parse(m->cfg->redis_url, &m->url, err, sizeof(err))) {
		log_error("bad redis URL", LF_STR("error", err));
		return CONFIG_EXIT_CONFIG;
	}
	/* Before an app boots for seconds: a Ruby daemon needs a Ruby app. */
	if (daemon_set_check(m->cfg, false, NULL, err, sizeof(err))) {
		log_error("configuration error", LF_STR("error", err));
		return CONFIG_EXIT_CONFIG;
	}
	if (m->cfg->prefork && m->cfg->nplugins) {
		m->plugins = plugin_set_load(m->cfg, err, sizeof(err));
		if (!m->plugins || plugin_set_before_fork(m->plugins, err, sizeof(err))) {
			log_error("cannot load plugins", LF_STR("error", err));
			return CONFIG_EXIT_CONFIG;
		}
		log_info("plugins preloaded", LF_INT("plugins", plugin_set_count(m->plugins)));
	}
	if (m->cfg->prefork && daemon_set_check(m->cfg, true, m->plugins, err, sizeof(err))) {
		log_error("configuration error", LF_STR("error", err));
		return CONFIG_EXIT_CONFIG;
	}
	if (m->cfg->pidfile) {
		if (pidfile_write(m->cfg->pidfile, m->pid)) {
			log_error("cannot write pid file", LF_STR("file", m->cfg->pidfile), LF_ERRNO());
			return 1;
		}
		/* The file we wrote is the one we remove, whatever a reload says. */
		m->pidfile = xstrdup(m->cfg->pidfile);
	}
	if (m->cfg->user && privs_drop(m->cfg->user, err, sizeof(err))) {
		log_error("cannot drop privileges", LF_STR("error", err));
		return CONFIG_EXIT_CONFIG;
	}
	if (scoreboard_create(&m->sb, 2 * CONFIG_PROCESSES_MAX)) {
		log_error("cannot map the scoreboard", LF_ERRNO());
		return 1;
	}
	return 0;
}

static void master_init_slots(struct master *m)
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

static void master_free(struct master *m)
{
	while (m->children) {
		struct child *c = m->children;
		m->children = c->next;
		if (c->ready_fd >= 0)
			close(c->ready_fd);
		free(c);
	}
	/* First: it runs the callbacks still pending (with no reply), and
	 * those belong to the modules below, which must still exist. Calls
	 * they make from there fail at once. */
	rds_async_free(m->rds);
	leader_free(m->leader);
	cron_free(m->cron);
	unique_free(m->uniq);
	sweep_free(m->sweep);
	recover_free(m->rec);
	poller_free(m->poller);
	registry_free(m->reg);
	daemon_set_free(m->daemons);
	if (m->loop)
		ev_loop_destroy(m->loop);
	scoreboard_destroy(&m->sb);
	plugin_set_free(m->plugins);
	if (m->pidfile)
		pidfile_remove(m->pidfile, m->pid);
	free(m->pidfile);
	config_free(m->cfg);
	free(m);
}

int master_run(struct config *cfg, const struct cli *cli)
{
	struct master *m = xcalloc(1, sizeof(*m));
	int rc;
	char *queues = config_queues_string(cfg);

	m->cfg = cfg;
	m->cli = cli;
	m->pid = getpid();
	m->started = util_now_mono();
	log_set_role("master", -1);
	if (cfg->processes_auto)
		cfg->processes = cpus_usable();
	m->target = m->initial_slots = cfg->processes;
	ident_node(m->identity, sizeof(m->identity));
	log_info("forq starting", LF_STR("version", FORQ_VERSION), LF_INT("processes", m->target),
		 LF_STR("identity", m->identity),
		 LF_BOOL("prefork", cfg->prefork), LF_STR("queues", queues),
		 LF_STR("namespace", keys_namespace()),
		 LF_STR("config", cfg->path ? cfg->path : "(none)"));
	free(queues);
	/* Orphans of job handlers come to us, not to a PID 1 that may not reap. */
	process_become_subreaper();
	if ((rc = master_prepare(m)))
		goto out;
	if (!(m->loop = ev_loop_new(EVFLAG_AUTO))) {
		log_error("cannot create event loop");
		rc = 1;
		goto out;
	}
	ev_set_userdata(m->loop, m);
	master_init_slots(m);
	master_watch_signals(m);
	if ((rc = master_start_redis(m)))
		goto out;
	for (int i = 0; i < m->target && m->state == M_RUNNING; i++)
		master_spawn(m, &m->slots[i], false);
	if (m->state == M_RUNNING)
		daemon_set_start(m->daemons);
	master_update_title(m);
	ev_run(m->loop, 0);
	rc = m->exit_code;
	master_report_left(m);
	log_info("forq stopped", LF_INT("exit", rc));
out:
	master_free(m);
	return rc;
}
