/* daemon_int: the daemon record and set and the calls between the three
 * daemon files: daemon.c (the child: start, stop, check-ins, exits),
 * daemon_lease.c (a cluster daemon's lease in Redis) and daemon_set.c (the
 * records and the set API of daemon.h). Nothing else includes it. */
#ifndef FORQ_DAEMON_INT_H
#define FORQ_DAEMON_INT_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "daemon.h"
#include "plugin.h"
#include "rds.h"

enum dstate { DS_OFF, DS_WAITING, DS_RUNNING, DS_STOPPING, DS_BACKOFF };
/* What a stopping daemon does once its child is gone; a later request
 * only ever raises it (a removal beats a restart). */
enum dnext { NEXT_RESTART, NEXT_CONTEND, NEXT_OFF, NEXT_REMOVE };
enum dmode { MODE_IDLE, MODE_RUNNING, MODE_QUIET, MODE_STOPPING };

struct daemon {
	struct daemon_set *set;
	struct daemon *next;
	struct config_daemon cfg;      /* own copy */
	struct config_daemon *pending; /* changed section, applied when the child is gone */
	char *key, *epoch_key, *cooldown_key, *runid_key, *settle_key;
	enum dstate state;
	enum dnext after; /* while stopping */
	bool failed;      /* while stopping: the stop counts as a failure (hung) */
	pid_t pid;
	double started;    /* monotonic */
	long long token;   /* > 0 while this node trusts its lease */
	long long stale;   /* a token given up locally but maybe still in Redis */
	long long seen;    /* the highest token this node has held or seen: tokens
	                      handed out later must be above it, whatever Redis lost */
	double lease_sent; /* monotonic send time of the pending lease call */
	double lease_ok;   /* ... of the last successful one */
	bool lease_busy;   /* an acquire or renew call is in flight */
	bool cooling;      /* last acquire was refused for our cooldown */
	bool settling;     /* ... because Redis lost or changed its data */
	bool renew_failed; /* the last renewal got no answer: retry soon, not in renew s */
	bool removed;      /* off the list; freed once no callback is due */
	int calls;         /* callbacks still due */
	int checkin_fd;    /* read end, -1 when none */
	unsigned quick;    /* failures since the last healthy run: backoff step */
	unsigned restarts;
	double fails[DAEMON_CRASH_LOOP_FAILURES]; /* monotonic times, ring */
	unsigned nfails;
	ev_timer lease_w, fence_w, child_w, checkin_w;
	ev_io checkin_io;
};

struct daemon_set {
	struct ev_loop *loop;
	struct rds_async *rds;
	char *identity;
	const struct config *cfg;
	struct plugin_set *plugins;
	daemon_forget_fn forget;
	void *priv;
	enum dmode mode;
	struct daemon *list;
};

/* ---- daemon.c: the child ---- */

const char *daemon_scope_name(const struct config_daemon *c);
bool daemon_is_cluster(const struct daemon *d);
void daemon_signal(struct daemon *d, int sig);
/* TERM now, KILL `grace` seconds later (at once when grace <= 0). */
void daemon_stop_child(struct daemon *d, enum dnext next, double grace, const char *why);
void daemon_on_checkin_timeout(struct ev_loop *loop, ev_timer *t, int revents);
void daemon_spawn(struct daemon *d);
void daemon_on_child_timer(struct ev_loop *loop, ev_timer *t, int revents);
/* A changed section takes effect once the old child is gone. */
void daemon_apply_pending(struct daemon *d);
void daemon_exited(struct daemon *d, int status);
/* From off (or a restart that keeps the lease): run or contend. */
void daemon_begin(struct daemon *d);
/* Stops d for good (or for removal): the child if any, else the lease. */
void daemon_wind_down(struct daemon *d, enum dnext next, const char *why);

/* ---- daemon_lease.c: the lease ---- */

void daemon_arm_lease(struct daemon *d);
/* Gives the lease up (compare-and-delete), optionally setting this node's
 * cooldown, and stops renewing. */
void daemon_release(struct daemon *d, bool cooldown);
void daemon_on_fence(struct ev_loop *loop, ev_timer *t, int revents);
void daemon_on_lease_timer(struct ev_loop *loop, ev_timer *t, int revents);

/* ---- daemon_set.c: records ---- */

void daemon_section_clear(struct config_daemon *c);
void daemon_destroy(struct daemon *d);
/* Takes d off the list; it is freed now or by its last due callback. */
void daemon_remove(struct daemon *d);

#endif
