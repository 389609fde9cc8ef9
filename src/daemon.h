/* daemon: the [daemon] sections (DESIGN.md §6.4). Each daemon is a child of
 * the master beside the workers: a node daemon runs on every node, a cluster
 * daemon only where this master holds its lease forq:daemon:<name>
 * ("<identity>|<token>", token from an only-growing counter). The master
 * renews the lease while it runs the daemon and kills the child before the
 * lease could lapse when it cannot; check-ins, restarts with backoff and the
 * crash-loop hand-off live here too. The master routes reaped pids here. */
#ifndef FORQ_DAEMON_H
#define FORQ_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "plugin.h"
#include "rds.h"

#define DAEMON_CRASH_LOOP_FAILURES 5
#define DAEMON_CRASH_LOOP_WINDOW 600.0 /* seconds */
#define DAEMON_COOLDOWN 300            /* seconds a crash-looping node stays out */
#define DAEMON_HEALTHY 300.0           /* seconds of life that reset the backoff */

struct ev_loop;
struct daemon_set;

/* Runs in every freshly forked daemon child before anything else: the
 * master drops what must not live on in a child (its loop, its Redis
 * socket, its pipes). */
typedef void (*daemon_forget_fn)(void *priv);

/* cfg and plugins (loaded by the master with --prefork, else NULL) are
 * borrowed and must outlive the set or be replaced by
 * daemon_set_reconfigure. Nothing starts before daemon_set_start. */
struct daemon_set *daemon_set_new(struct ev_loop *loop, struct rds_async *rds, const char *identity,
                                  const struct config *cfg, struct plugin_set *plugins,
                                  daemon_forget_fn forget, void *priv);
void daemon_set_free(struct daemon_set *set);

/* 0 when every `ruby =` daemon has a Ruby app to run in and, when the
 * plugins are loaded (prefork, forq -n), every plugin daemon names an entry
 * some plugin registered; else -1 with a message (file:line) in err. */
int daemon_set_check(const struct config *cfg, bool loaded, const struct plugin_set *plugins,
		     char *err, size_t errlen);

/* Starts node daemons and contention for cluster daemons. */
void daemon_set_start(struct daemon_set *set);
/* Quiet: cluster daemons stop, their leases are released as soon as their
 * children are gone, and this node stops contending; node daemons run on. */
void daemon_set_quiet(struct daemon_set *set);
/* Graceful stop: every daemon gets TERM, KILL after its stop_timeout. */
void daemon_set_stop(struct daemon_set *set);
/* KILL every daemon child now (the third stop signal). */
void daemon_set_kill(struct daemon_set *set);
/* true when no daemon child is alive. */
bool daemon_set_is_idle(const struct daemon_set *set);
/* true (and handled) when pid was a daemon child. */
bool daemon_set_reap(struct daemon_set *set, pid_t pid, int status);
/* HUP: unchanged daemons run on, removed ones stop, new ones start,
 * changed ones restart. cfg is borrowed as in daemon_set_new. */
void daemon_set_reconfigure(struct daemon_set *set, const struct config *cfg);
/* TTIN: one log line per daemon. */
void daemon_set_dump(const struct daemon_set *set);
/* For /metrics: fn(priv, name, running) for each daemon of the set. */
typedef void (*daemon_each_fn)(void *priv, const char *name, bool running);
void daemon_set_each(const struct daemon_set *set, daemon_each_fn fn, void *priv);
/* In a forked child that is not a daemon (a worker): closes our fds. */
void daemon_set_close_fds(struct daemon_set *set);

#endif
