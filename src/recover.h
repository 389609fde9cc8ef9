/* recover: what the master does with a dead worker's working list
 * (DESIGN.md §5): put its jobs back on their queues, or - for a plugin
 * handler killed by its own timeout - record the job as failed through the
 * retry rules. Work that cannot reach Redis now is kept and retried when the
 * connection comes back; the worker's lane stays reserved until then. */
#ifndef FORQ_RECOVER_H
#define FORQ_RECOVER_H

#include "rds.h"

enum recover_mode {
	RECOVER_BACK,    /* died mid-job: back of its queue */
	RECOVER_FRONT,   /* killed at stop: front of its queue, runs next */
	RECOVER_TIMEOUT, /* a plugin handler exceeded its timeout: a failure */
};

struct recover;
typedef void (*recover_done_fn)(void *priv, int lane, long long jobs);

struct recover *recover_new(struct rds_async *rds, const char *identity, recover_done_fn done,
			    void *priv);
void recover_free(struct recover *r);
void recover_lane(struct recover *r, int lane, enum recover_mode mode, int default_retry);
/* Runs whatever waited for Redis (call when the connection is back). */
void recover_resume(struct recover *r);
/* Lanes still waiting. */
int recover_pending(const struct recover *r);

#endif
