/* leader: the cluster's leader lease (DESIGN.md §6.1). Every master polls
 * for it; the holder renews it (compare-and-extend) and demotes itself well
 * before it could lapse when renewals fail; a stop or quiet releases it at
 * once. Leader-only writes carry the lease value ("<identity>|<epoch>") and
 * their scripts check it first (fencing), so a stale leader cannot write. */
#ifndef FORQ_LEADER_H
#define FORQ_LEADER_H

#include <stdbool.h>

#include "rds.h"

#define LEADER_POLL 1.0 /* seconds between a follower's attempts */

struct leader;

/* on_change(priv, lease): lease is "<identity>|<epoch>" when this node just
 * became leader, NULL when it just stopped being one. */
typedef void (*leader_change_fn)(void *priv, const char *lease);

struct leader *leader_new(struct ev_loop *loop, struct rds_async *rds, const char *identity,
			  double ttl, double renew, leader_change_fn on_change, void *priv);
/* Gives the lease up (if held) and stops contending: stop and quiet. */
void leader_resign(struct leader *l);
void leader_free(struct leader *l);

#endif
