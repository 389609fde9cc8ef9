/* master: one libev loop, one process-wide struct. Signals arrive only as
 * libev watchers; the order of handling within a loop turn is fixed by
 * watcher priority (stop/quiet/reload before reaping), as nginx fixes its
 * order (reap, terminate, quit, reload). The worker pool is master_pool.c,
 * the Redis side master_redis.c; master_int.h is what they share. */
#include "master.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"
#include "cron.h"
#include "daemon.h"
#include "ident.h"
#include "keys.h"
#include "leader.h"
#include "pidfile.h"
#include "privs.h"
#include "poller.h"
#include "process.h"
#include "registry.h"
#include "sdnotify.h"
#include "sweep.h"
#include "unique.h"
#include "util.h"
#include "master_int.h"

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
	master_notify_reloading(m);
	if (!nc) {
		log_error("reload failed; keeping the running configuration",
			  LF_STR("where", err.where), LF_STR("error", err.msg));
		master_reopen_logs(m, "HUP");
		master_notify_update(m);
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
	master_http_reconfigure(m);
	master_reopen_logs(m, "HUP");
	if (m->state != M_RUNNING) {
		m->target = nc->processes;
		master_notify_update(m);
		return;
	}
	m->gen++; /* workers started by the resize below are already new */
	master_resize(m, nc->processes);
	m->rolling = true;
	master_roll_step(m);
	master_notify_update(m);
}

/* HUP and WINCH (USR1 is quiet, as in Sidekiq): the master reopens the
 * log file and tells the workers, which reopen it from their loops; exec
 * handlers they start later inherit the new file. */
void master_reopen_logs(struct master *m, const char *why)
{
	const char *want = m->cfg->log_file, *have = log_file_path();
	if (!want && !have)
		return;
	if (!want) {
		log_warn("log_file cannot be turned off by a reload; restart forq to log to stdout",
			 LF_STR("file", have));
		want = have;
	}
	if (have && !strcmp(want, have) ? log_reopen() : log_open_file(want)) {
		log_error("cannot open log file; still writing to the old one",
			  LF_STR("file", want), LF_ERRNO());
		return;
	}
	log_info("log file reopened", LF_STR("file", want), LF_STR("signal", why));
	master_signal_children(m, SIGWINCH);
}

/* ---- signals ---------------------------------------------------------- */

void master_stop(struct master *m, int signum)
{
	m->stop_requests++;
	if (m->stop_requests == 1) {
		double grace = m->cfg->shutdown_timeout + HARD_KILL_GRACE;
		m->state = M_STOPPING;
		master_notify_stopping(m);
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

void master_quiet(struct master *m, int signum)
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
void master_dump(struct master *m)
{
	double now_mono = util_now_mono(), now = util_now_wall();
	log_info("worker table", LF_STR("state", master_state_name(m)),
		 LF_INT("workers", master_count_children(m, false)), LF_INT("target", m->target),
		 LF_DBL("uptime", now_mono - m->started),
		 LF_INT("restarts_crash", m->restarts[RESTART_CRASH]),
		 LF_INT("restarts_rolling", m->restarts[RESTART_ROLLING]),
		 LF_INT("restarts_max_rss", m->restarts[RESTART_MAX_RSS]),
		 LF_INT("restarts_max_jobs", m->restarts[RESTART_MAX_JOBS]));
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
	case SIGWINCH:
		master_reopen_logs(m, "WINCH");
		break;
	case SIGTTOU:
		log_info("TTOU ignored (forq does not resize on signals; use HUP)");
		break;
	}
}

static void master_watch_signals(struct master *m)
{
	static const int signums[] = {SIGTERM, SIGINT, SIGQUIT, SIGTSTP, SIGUSR1, SIGTTIN,
				      SIGUSR2, SIGHUP, SIGTTOU, SIGWINCH, SIGCHLD};
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
}

/* ---- start and run ---------------------------------------------------- */

static int master_prepare(struct master *m)
{
	char err[512];
	if (config_rdsurl(m->cfg, &m->url, err, sizeof(err)) ||
	    rds_tls_check(&m->url, err, sizeof(err))) {
		log_error("bad redis settings", LF_STR("error", err));
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
	master_http_free(m);
	sdnotify_free(m->notify);
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
	/* Before the first line, so the file has them all; as root when
	 * `user` is set, so a later reopen needs the directory writable. */
	if (cfg->log_file && log_open_file(cfg->log_file)) {
		log_error("cannot open log file", LF_STR("file", cfg->log_file), LF_ERRNO());
		rc = 1;
		goto out;
	}
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
	master_notify_start(m);
	master_recycle_init(m);
	if ((rc = master_start_redis(m)) || (rc = master_http_start(m)))
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
