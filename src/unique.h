/* unique: unique jobs (DESIGN.md section 6.3). Which lock a job runs under,
 * the Redis steps of each phase (push, start, end: src/lua/unique_*.lua,
 * synchronous) and the master's renewal of the runtime leases its workers
 * hold (asynchronous, from the scoreboard). Lock keys are
 * forq:unique:<sha1 of job_lock_string()> = jid and <that>:run = jid; the
 * SHA-1 is computed in Lua only, so callers pass the lock string. */
#ifndef FORQ_UNIQUE_H
#define FORQ_UNIQUE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "job.h"
#include "rds.h"
#include "scoreboard.h"

#define UNIQUE_TTL_DEFAULT 3600.0 /* DESIGN.md section 8 */
#define UNIQUE_RETRY_IN 5.0         /* seconds before a while_executing conflict runs again */

/* sb_cell.lock_hold bits: which leases the master renews for a running job. */
#define UNIQUE_HOLD_LOCK 1 /* forq:unique:<sha1> (until_executed) */
#define UNIQUE_HOLD_RUN 2  /* forq:unique:<sha1>:run (while phases) */

struct unique_lock {
	enum config_unique type;
	char *lock;        /* the lock string (owned) */
	double ttl;        /* seconds the enqueue-phase lock lasts */
	double lease;      /* seconds a runtime lease lasts unrenewed */
	char key[KEYS_UNIQUE_LOCK_SIZE]; /* forq:unique:<sha1>, known after unique_start */
};

/* The lock a job runs under: the payload's "forq_unique" (and
 * "forq_unique_ttl") when forq stamped one, else its class's unique config;
 * the class's unique_args pick the arguments. queue is the job's queue.
 * true with l filled (free with unique_lock_free), false when none. */
bool unique_lock_of(const struct config *c, const struct job *j, const char *queue,
		    struct unique_lock *l);
void unique_lock_free(struct unique_lock *l);
/* true when the type takes its lock at enqueue time (all but while_executing). */
bool unique_locks_at_push(enum config_unique type);

/* Push: LPUSH (or ZADD schedule when at > 0) payload only if the lock can be
 * taken; ttl seconds (a scheduled push adds its delay). 1 pushed, 0 not
 * (holder filled with the jid that holds the lock), -1 Redis error (err). */
int unique_push(struct rds *r, const struct unique_lock *l, const char *jid,
		const char *payload, const char *queue, double at, double ttl, char *holder,
		size_t holderlen, char *err, size_t errlen);

enum unique_verdict {
	UNIQUE_RUN,   /* run it: the lock is held (l->key filled) */
	UNIQUE_DROP,  /* a duplicate: removed from the working list unrun */
	UNIQUE_LATER, /* another runs: moved to the schedule set for later */
};
/* Worker, before running a fetched job (payload as in the working list).
 * The verdict, or -1 when the call failed (no reply, or an error reply
 * such as LOADING or BUSY): call again. */
int unique_start(struct rds *r, struct unique_lock *l, const char *jid, const char *working,
		 const char *payload, char *holder, size_t holderlen);
/* Worker, after the outcome (ack, retry, dead, discard, requeue) was
 * written; retry_at is the retry's score. 0, or -1 when the call failed (no
 * reply, or an error reply): call again. */
int unique_end(struct rds *r, const struct unique_lock *l, const char *jid, const char *outcome,
	       double retry_at);
/* Worker: the leases the master must renew while the job runs (cell->lock_*),
 * and clearing them when it ends. */
void unique_publish(struct sb_cell *cell, const struct unique_lock *l);
void unique_unpublish(struct sb_cell *cell);

/* Master: renews every busy cell's leases each lease/3 seconds. */
struct ev_loop;
struct rds_async;
struct unique;
struct unique *unique_new(struct ev_loop *loop, struct rds_async *rds,
			  const struct scoreboard *sb, double lease);
void unique_free(struct unique *u);

#endif
