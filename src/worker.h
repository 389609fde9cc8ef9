/* worker: the body of a worker process, from just after fork to exit: a
 * fetch -> run -> record loop over Redis (DESIGN.md §5) with its signals on
 * a libev loop. */
#ifndef FORQ_WORKER_H
#define FORQ_WORKER_H

#include <sys/types.h>

#include "config.h"
#include "jobstats.h"
#include "plugin.h"
#include "rdsurl.h"
#include "scoreboard.h"

struct worker_args {
	const struct config *cfg;
	const struct rdsurl *redis;
	const char *identity;       /* the node's Sidekiq process identity */
	struct plugin_set *plugins; /* loaded by the master (prefork), or NULL */
	struct sb_cell *cell;       /* this worker's scoreboard cell */
	struct jobstats_lane *stats; /* its job counters for /metrics (jobstats.h) */
	int slot;
	int lane;         /* names the working list; unique among live workers */
	int ready_fd;     /* write end: one byte 'R' once ready, then closed */
	pid_t master_pid; /* to notice the master's death */
};

/* Runs the worker until it is told to stop; returns its exit status
 * (0 normally, 78 when a plugin refuses to start). */
int worker_main(const struct worker_args *args);

#endif
