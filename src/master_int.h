/* master_int: what the master's modules share. master.c owns the lifecycle
 * (start, signals, reload, stop), master_pool.c the worker slots (spawn,
 * readiness, exit, respawn, rolling restart, resize) and master_redis.c the
 * node's Redis side (registry, leader duties, leaving). One struct master per
 * process; only these three files see inside it. */
#ifndef FORQ_MASTER_INT_H
#define FORQ_MASTER_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"
#include "config.h"
#include "rdsurl.h"
#include "scoreboard.h"

#define HARD_KILL_GRACE 3.0 /* seconds after shutdown_timeout before KILL */
#define FAST_STOP_GRACE 2.0 /* seconds after a second stop signal before KILL */
#define LEAVE_TIMEOUT 2.0   /* seconds to wait for Redis when leaving */

enum master_state { M_RUNNING, M_QUIET, M_STOPPING };
enum child_state { C_STARTING, C_READY, C_RETIRING };

/* Why a worker was replaced, counted for /metrics. */
enum restart_cause { RESTART_CRASH, RESTART_ROLLING, RESTART_MAX_RSS, RESTART_MAX_JOBS, RESTART_CAUSES };

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
	long rss_base_kb; /* memory when it became ready; <= 0 = not known */
	bool rss_warned;  /* told once that it is over max_rss without growing */
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
	enum restart_cause next_cause; /* why s->next is starting */
	unsigned recycle_streak;       /* recycles in a row of young workers */
	double recycle_not_before;     /* monotonic: recycling backs off until then */
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
	bool reloading; /* a HUP's roll runs: systemd hears READY=1 after it */
	bool notified_ready;
	bool is_leader; /* holds the lease now */
	struct sdnotify *notify; /* NULL unless systemd listens */
	ev_timer recycle_w, notify_w;
	unsigned recycle_looks;
	struct child *children;
	struct slot slots[CONFIG_PROCESSES_MAX];
	ev_signal sigs[11];
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
	struct metrics *metrics; /* job counters, Redis gauges (master_http.c) */
	struct http *http;       /* the http_listen endpoint, NULL when off */
	ev_timer beat_w, rows_w, leave_w;
	long long stat_processed, stat_failed; /* not yet flushed to Redis */
	bool leaving;
	unsigned long long restarts[RESTART_CAUSES]; /* by cause */
};

const char *master_state_name(const struct master *m);
int master_count_children(const struct master *m, bool ready_only);
void master_update_title(struct master *m);
void master_signal_children(struct master *m, int sig);
void master_kill_children(struct master *m);
void master_collect_stats(struct master *m, struct child *c);
void master_on_recovered(void *priv, int lane);
void master_forget_in_child(void *priv);
void master_spawn(struct master *m, struct slot *s, bool replacement);
void master_roll_step(struct master *m);
void master_start_roll(struct master *m, const char *why);
void master_resize(struct master *m, int target);
void master_reap(struct master *m);
void master_init_slots(struct master *m);
void master_maybe_finish(struct master *m);
void master_report_left(struct master *m);
int master_start_redis(struct master *m);
void master_stop(struct master *m, int signum);
void master_quiet(struct master *m, int signum);
void master_dump(struct master *m);
/* master_http.c: the HTTP endpoint and what /metrics reads. */
int master_http_start(struct master *m);
void master_http_reconfigure(struct master *m);
void master_http_forget_in_child(struct master *m);
void master_http_free(struct master *m);
void master_reopen_logs(struct master *m, const char *why);
/* master_recycle.c (replacing bloated or well-worn workers) and
 * master_notify.c (what systemd hears) see inside struct master too. */
void master_recycle_init(struct master *m);
void master_recycle_on_ready(struct master *m, struct child *c);
const char *master_restart_cause_name(enum restart_cause cause);
/* master_notify.c */
void master_notify_start(struct master *m);
void master_notify_update(struct master *m);
void master_notify_reloading(struct master *m);
void master_notify_stopping(struct master *m);

#endif
