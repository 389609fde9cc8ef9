/* recover: what happens to a dead worker's working list (DESIGN.md §5).
 * The job it was running (its Busy entry) counts an abnormal loss; the third
 * loss of a jid within 72 h sends it to the dead set as Forq::ProcessLost
 * (a poison pill), otherwise it goes back to its queue. A plugin handler
 * killed by its own timeout is recorded as a failed run instead. Jobs not yet
 * started go back to the front. Work that cannot reach Redis now is kept and
 * retried when the connection is back, and a step Redis answers with an error
 * (LOADING, BUSY...) is retried with backoff; the lane stays reserved until
 * then. The orphan sweep uses the same path for lanes of dead nodes, fenced
 * by its lease. */
#ifndef FORQ_RECOVER_H
#define FORQ_RECOVER_H

#include "rds.h"

#define RECOVER_POISON_LOSSES 3        /* DESIGN.md §8 */
#define RECOVER_POISON_WINDOW 259200   /* 72 h */

enum recover_mode {
	RECOVER_LOST,    /* the worker died mid-job: count a loss, back of its queue */
	RECOVER_FRONT,   /* killed at a stop: front of its queue, no loss */
	RECOVER_TIMEOUT, /* a plugin handler exceeded its timeout: a failure */
};

struct recover;
/* lane < 0 for sweeps of other nodes (no lane of ours to release). */
typedef void (*recover_done_fn)(void *priv, int lane);

struct recover *recover_new(struct ev_loop *loop, struct rds_async *rds, recover_done_fn done,
			    void *priv);
void recover_free(struct recover *r);
/* The unique lock the running job held, from its scoreboard cell
 * (unique.c): its <key>:run lease is released; when lease is set the lock
 * itself (until_executed) gets ttl seconds back if the job is requeued and
 * is released if the job goes to the dead set. */
struct recover_lock {
	const char *key; /* forq:unique:<sha1> */
	bool lease;
	double ttl;
};
/* Recovers forq:working:<identity>:<lane>, unfenced: a lane of this node
 * (the sweep uses recover_node_lane). running_jid names
 * the job that was running ("" for none; NULL when unknown: the Busy entry
 * tells). cause is logged and written into a poison pill's error message
 * ("signal KILL"). default_retry is the class's retry limit for
 * RECOVER_TIMEOUT. own: the lane is ours (release it through done when
 * finished). lock: the unique lock the running job held, or NULL. */
void recover_lane_locked(struct recover *r, const char *identity, int lane, bool own,
			 const char *running_jid, enum recover_mode mode, const char *cause,
			 int default_retry, const struct recover_lock *lock);
/* Recovers a lane of another node that the orphan sweep found dead
 * (RECOVER_LOST, the Busy entry names the running job). lease is the
 * sweep's "<identity>|<epoch>": every write checks, in the same script, that
 * forq:leader still holds it and that forq:node:<identity> is still gone;
 * when not, this recovery ends, with every queued one of the same lease
 * (or of the same node, when its key is back). That node's Busy entries are
 * left to expire. */
void recover_node_lane(struct recover *r, const char *identity, int lane, const char *lease,
		       const char *cause);
/* Leadership was lost: drops every recovery of another node, running or
 * queued. */
void recover_drop_nodes(struct recover *r);
/* Runs whatever waited for Redis (call when the connection is back). */
void recover_resume(struct recover *r);
/* Tasks still waiting or running. */
int recover_pending(const struct recover *r);

#endif
