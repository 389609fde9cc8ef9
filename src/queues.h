/* queues: the fetch order of Sidekiq's `-q name,weight` (research §5.1-5.2).
 * Pure: the caller passes its random numbers. */
#ifndef FORQ_QUEUES_H
#define FORQ_QUEUES_H

#include <stddef.h>

#include "config.h"

/* Writes into order[] (room for c->nqueues entries) the indexes of the
 * queues in the order to try for one fetch and returns how many. Strict
 * mode (no weight given, i.e. !c->queues_weighted): config order. Weighted:
 * the distribution of Sidekiq's "each queue weight times in a list, shuffle,
 * de-duplicate keeping first occurrences", drawn as the equivalent weighted
 * pick without replacement (n-1 calls of rnd(ctx), uniform in [0,1)). */
size_t queues_order(const struct config *c, double (*rnd)(void *ctx), void *ctx, size_t *order);

#endif
