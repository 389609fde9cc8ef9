/* master_redis: this node on Redis: the Sidekiq process registry and its
 * stats, Web UI signals, leader duties (poller, sweep, cron), and leaving
 * the registry at the end of a stop. */
#include "master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "daemon.h"
#include "leader.h"
#include "metrics.h"
#include "poller.h"
#include "procmem.h"
#include "registry.h"
#include "sweep.h"
#include "unique.h"
#include "util.h"
#include "master_int.h"

/* ---- Redis side: registry, poller, leaving ------------------------------ */

/* 0 for a process already gone: the heartbeat's figure is a sum. */
static long proc_rss_kb(pid_t pid)
{
	long kb = procmem_rss_kb(pid);
	return kb > 0 ? kb : 0;
}

/* The job each busy worker runs, for its row on the Busy page. */
static void master_running_jobs(struct master *m, struct registry_state *st)
{
	for (struct child *c = m->children; c; c = c->next) {
		const struct sb_cell *cell = scoreboard_cell(&m->sb, c->cell);
		if (cell->state == SB_BUSY) {
			st->busy++;
			registry_state_add_job(st, c->cell, cell->jid, cell->job_started);
		}
	}
}

static void master_registry_state(void *priv, struct registry_state *st)
{
	struct master *m = priv;
	st->rss_kb = proc_rss_kb(m->pid);
	master_running_jobs(m, st);
	for (struct child *c = m->children; c; c = c->next) {
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
	metrics_on_beat(m->metrics, util_now_wall());
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

static void master_on_rows(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = ev_userdata(loop);
	struct registry_state st = {0};
	(void)t;
	(void)revents;
	master_running_jobs(m, &st);
	if (st.njobs)
		registry_refresh_rows(m->reg, &st);
	free(st.jobs);
}

static void master_on_redis(bool up, void *priv)
{
	struct master *m = priv;
	metrics_on_redis(m->metrics, up);
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
void master_maybe_finish(struct master *m)
{
	if (m->state != M_STOPPING || m->children || m->leaving || !daemon_set_is_idle(m->daemons))
		return;
	if (recover_pending(m->rec) && rds_async_is_up(m->rds))
		return; /* master_on_recovered calls us again */
	m->leaving = true;
	poller_stop(m->poller);
	sweep_stop(m->sweep);
	ev_timer_stop(m->loop, &m->beat_w);
	ev_timer_stop(m->loop, &m->rows_w);
	ev_timer_set(&m->leave_w, LEAVE_TIMEOUT, 0.0);
	ev_timer_start(m->loop, &m->leave_w);
	registry_beat(m->reg);
	registry_leave(m->reg, master_left, m);
}

/* At exit, a lane still reserved is one whose recovery never reached Redis
 * (a stop while it was unreachable): its jobs stay in the working list,
 * those whose outcomes were made but not written included, and run again
 * once the sweep finds this node gone. */
void master_report_left(struct master *m)
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
	m->is_leader = lease != NULL;
	poller_set_lease(m->poller, lease);
	sweep_set_lease(m->sweep, lease);
	cron_set_lease(m->cron, lease);
	metrics_on_lease(m->metrics, lease);
}

int master_start_redis(struct master *m)
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
	ev_timer_init(&m->rows_w, master_on_rows, REGISTRY_ROWS, REGISTRY_ROWS);
	ev_timer_start(m->loop, &m->rows_w);
	ev_timer_init(&m->leave_w, master_on_leave_timeout, 0.0, 0.0);
	return 0;
}
