/* queues: which queues one fetch tries, and in what order, as Sidekiq 6.4's
 * BasicFetch: config order when strict, a weighted random order otherwise. */
#include "queues.h"

#include <stdbool.h>

static unsigned long queue_weight(const struct config *c, size_t i)
{
	return c->queues[i].weight > 1 ? (unsigned long)c->queues[i].weight : 1; /* max(w, 1) */
}

/* Sidekiq shuffles a list holding each queue `weight` times and keeps the
 * first occurrence of each. The first item of a uniform shuffle is queue i
 * with probability w_i / W, and the first item that is not an already-seen
 * queue is again uniform over what is left, so drawing queues without
 * replacement with probability w_i / (sum of the remaining weights) gives
 * exactly the same distribution, without building a list of W entries (W
 * may reach millions) on every fetch. */
static size_t weighted_order(const struct config *c, double (*rnd)(void *ctx), void *ctx,
                             size_t *order)
{
	double left = 0;
	for (size_t i = 0; i < c->nqueues; i++) {
		order[i] = i;
		left += (double)queue_weight(c, i);
	}
	for (size_t k = 0; k + 1 < c->nqueues; k++) {
		double r = rnd(ctx);
		if (!(r >= 0) || r >= 1) /* a broken source must not break the order */
			r = 0;
		double pick = r * left, acc = 0;
		size_t j = k;
		for (; j + 1 < c->nqueues; j++) {
			acc += (double)queue_weight(c, order[j]);
			if (pick < acc)
				break;
		}
		size_t chosen = order[j];
		order[j] = order[k];
		order[k] = chosen;
		left -= (double)queue_weight(c, chosen);
	}
	return c->nqueues;
}

size_t queues_order(const struct config *c, double (*rnd)(void *ctx), void *ctx, size_t *order)
{
	if (c->queues_weighted && c->nqueues > 1)
		return weighted_order(c, rnd, ctx, order);
	for (size_t i = 0; i < c->nqueues; i++)
		order[i] = i;
	return c->nqueues;
}
