/* worker: a libev loop that owns the worker's signals (TERM/QUIT stop,
 * TSTP/USR1 quiet, TTIN state dump, INT ignored because the master translates
 * it) and watches for the master's death. Readiness is reported to the
 * master over a pipe once plugins are initialised. */
#include "worker.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "process.h"
#include "proctitle.h"
#include "util.h"

#define WORKER_PARENT_CHECK 1.0 /* seconds between master-alive checks */

struct worker {
	const struct worker_args *a;
	struct ev_loop *loop;
	struct plugin_set *own_plugins; /* loaded here when not preforked */
	ev_signal sig_term, sig_quit, sig_tstp, sig_usr1, sig_ttin;
	ev_timer tick;
	double started;
	bool quiet, stopping;
};

static void worker_set_state(struct worker *w, enum sb_state s)
{
	w->a->cell->state = s;
	proctitle_set("forq: worker[%d] %s", w->a->slot, scoreboard_state_name(s));
}

static void worker_stop(struct worker *w, const char *why)
{
	if (w->stopping)
		return;
	w->stopping = true;
	log_info("worker stopping", LF_STR("reason", why));
	worker_set_state(w, SB_STOPPING);
	/* No job runs yet in this loop, so there is nothing to finish. */
	ev_break(w->loop, EVBREAK_ALL);
}

static void worker_on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = ev_userdata(loop);
	(void)revents;
	switch (s->signum) {
	case SIGTERM:
	case SIGQUIT:
		worker_stop(w, s->signum == SIGTERM ? "TERM" : "QUIT");
		break;
	case SIGTSTP:
	case SIGUSR1:
		if (!w->quiet && !w->stopping) {
			w->quiet = true;
			log_info("worker quiet: no more fetching");
			worker_set_state(w, SB_QUIET);
		}
		break;
	case SIGTTIN:
		log_info("worker state", LF_STR("state", scoreboard_state_name(w->a->cell->state)),
			 LF_DBL("uptime", util_now_mono() - w->started),
			 LF_INT("jobs_done", w->a->cell->jobs_done));
		break;
	}
}

static void worker_on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);
	(void)t;
	(void)revents;
	w->a->cell->last_tick = util_now_mono();
	if (process_parent_is_gone(w->a->master_pid))
		worker_stop(w, "master gone");
}

static void worker_watch_signals(struct worker *w)
{
	struct {
		ev_signal *s;
		int signum;
	} table[] = {
		{&w->sig_term, SIGTERM}, {&w->sig_quit, SIGQUIT}, {&w->sig_tstp, SIGTSTP},
		{&w->sig_usr1, SIGUSR1}, {&w->sig_ttin, SIGTTIN},
	};
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		ev_signal_init(table[i].s, worker_on_signal, table[i].signum);
		ev_signal_start(w->loop, table[i].s);
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGWINCH, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
}

static int worker_init_plugins(struct worker *w)
{
	char err[512];
	struct plugin_set *set = w->a->plugins;
	if (!set && w->a->cfg->nplugins) {
		set = w->own_plugins = plugin_set_load(w->a->cfg->plugins, w->a->cfg->nplugins, err,
						       sizeof(err));
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

int worker_main(const struct worker_args *a)
{
	struct worker w = {.a = a, .started = util_now_mono()};
	char idx[16];
	int rc = 0;

	log_set_role("worker", a->slot);
	snprintf(idx, sizeof(idx), "%d", a->slot);
	setenv("FORQ_WORKER_INDEX", idx, 1);
	if (a->cfg->environment)
		setenv("FORQ_ENV", a->cfg->environment, 1);
	a->cell->pid = (int32_t)getpid();
	worker_set_state(&w, SB_BOOTING);
	w.loop = ev_loop_new(EVFLAG_AUTO);
	if (!w.loop) {
		log_error("cannot create event loop");
		return 1;
	}
	ev_set_userdata(w.loop, &w);
	worker_watch_signals(&w);
	process_unblock_signals();
	if (worker_init_plugins(&w)) {
		rc = CONFIG_EXIT_CONFIG;
		goto out;
	}
	ev_timer_init(&w.tick, worker_on_tick, 0.0, WORKER_PARENT_CHECK);
	ev_timer_again(w.loop, &w.tick);
	worker_on_tick(w.loop, &w.tick, 0);
	if (!w.stopping) {
		worker_report_ready(&w);
		worker_set_state(&w, w.quiet ? SB_QUIET : SB_IDLE);
		ev_run(w.loop, 0);
	}
	log_debug("worker exiting", LF_DBL("uptime", util_now_mono() - w.started));
out:
	plugin_set_free(w.own_plugins);
	ev_loop_destroy(w.loop);
	return rc;
}
