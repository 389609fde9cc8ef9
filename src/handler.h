/* handler: runs one job's handler (DESIGN.md §4) inside a worker: an exec
 * handler as a child process driven by the worker's libev loop, or a plugin
 * handler called in-process. */
#ifndef FORQ_HANDLER_H
#define FORQ_HANDLER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "plugin.h"

struct ev_loop;

enum handler_status {
	HANDLER_OK,        /* exit 0 / FORQ_OK */
	HANDLER_FAILED,    /* error_class and error_message say why */
	HANDLER_ABANDONED, /* stopped by handler_abandon: requeue, no outcome */
};

struct handler_result {
	enum handler_status status;
	char error_class[128];
	char error_message[2048];
	/* From a plugin's set_failure (forq.h); free with handler_result_free. */
	struct plugin_failure detail;
};

struct handler_env {
	struct ev_loop *loop;
	const struct config *cfg;
	struct plugin_set *plugins[2]; /* preforked and own; either may be NULL */
	volatile int32_t *timeout_armed; /* scoreboard flag: a SIGALRM death is a timeout */
	volatile int32_t *handler_pid;   /* scoreboard: whom to kill if the worker dies */
};

/* Runs j (fetched from queue) to completion and fills res. Exec handlers
 * run the loop until the child and its output are done, so the worker's
 * signal watchers keep working meanwhile. */
void handler_run(const struct handler_env *env, const struct job *j, const char *queue,
		 struct handler_result *res);

void handler_result_free(struct handler_result *res);

/* Asks the running exec handler (if any) to stop now: TERM to its process
 * group, KILL 2 s later. Safe to call from a signal watcher. */
void handler_abandon(void);

#endif
