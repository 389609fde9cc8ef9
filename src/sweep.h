/* sweep: the orphan sweep of DESIGN.md §5: finds nodes whose master stopped
 * beating (forq:node:<identity> gone on two rounds in a row) and recovers
 * their workers' working lists. Only the leader sweeps (fenced by its
 * lease). */
#ifndef FORQ_SWEEP_H
#define FORQ_SWEEP_H

#include "rds.h"
#include "recover.h"

struct sweep;

/* interval: seconds between rounds; settle: seconds to wait after Redis
 * restarted (the node heartbeat TTL). */
struct sweep *sweep_new(struct ev_loop *loop, struct rds_async *rds, struct recover *rec,
			const char *identity, double interval, double settle);
/* Leader only: sweeps only while it holds lease (NULL: not leader). */
void sweep_set_lease(struct sweep *s, const char *lease);
void sweep_stop(struct sweep *s);
void sweep_free(struct sweep *s);

#endif
