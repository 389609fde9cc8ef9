/* daemon_child: what a daemon's child process does between the fork and
 * its program: it ties itself to the master's life, drops the master's
 * descriptors, sets FORQ_DAEMON_* and the check-in pipe, then execs an exec
 * daemon or calls a plugin daemon's entry point. Runs only in the child. */
#ifndef FORQ_DAEMON_CHILD_H
#define FORQ_DAEMON_CHILD_H

#include <sys/types.h>

#include "config.h"
#include "plugin.h"

struct daemon_child {
	const struct config_daemon *section;
	const char *scope;          /* "cluster" or "node" */
	long long token;            /* > 0 for a cluster daemon */
	const struct config *cfg;   /* FORQ_ENV, and plugins to load when ... */
	struct plugin_set *plugins; /* ... the master has none loaded (NULL) */
	int rfd, wfd;               /* the check-in pipe, -1 when none */
	pid_t master;
	/* Called in the child before the daemon is set up: closes what the
	 * master holds open (its loop, its Redis socket, the other daemons'
	 * pipes). */
	void (*forget)(void *priv);
	void *priv;
};

/* A process_child_fn: arg is a struct daemon_child, borrowed. Returns the
 * exit status when the program could not be run or the entry returned. */
int daemon_child_main(void *arg);

#endif
