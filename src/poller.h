/* poller: moves due jobs from the `retry` and `schedule` sets to their
 * queues (research §6.4), at Sidekiq's randomised average interval. The move
 * is one Lua script per batch guarded by ZREM, so any number of nodes may
 * poll at once without enqueuing a job twice. */
#ifndef FORQ_POLLER_H
#define FORQ_POLLER_H

#include "rds.h"

struct poller;

/* average: seconds between polls on average (Sidekiq: 5 x process count). */
struct poller *poller_new(struct ev_loop *loop, struct rds_async *rds, double average);
/* Leader only: polls only while it holds lease (NULL: not leader). */
void poller_set_lease(struct poller *p, const char *lease);
/* Polls now (also runs from its own timer). */
void poller_poll(struct poller *p);
void poller_stop(struct poller *p);
void poller_free(struct poller *p);

#endif
