/* metrics: what the master knows for /metrics besides its own tables: the
 * job counters of every worker lane (jobstats) and the totals of dead
 * workers, Redis connectivity (reconnects, round-trip time, heartbeats that
 * reached Redis), leadership, and the queue gauges, which a timer refreshes
 * through the async connection (LLEN and the oldest job of each configured
 * queue) so that a scrape never waits for Redis. Also the text-format
 * helpers (Prometheus exposition format 0.0.4). */
#ifndef FORQ_METRICS_H
#define FORQ_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "jobstats.h"
#include "rds.h"

#define METRICS_POLL 2.0 /* seconds between refreshes of the Redis-side gauges */

struct ev_loop;
struct metrics;

/* Maps nlanes job-counter lanes (before any fork). NULL (errno) when the
 * mapping fails. rds is borrowed and must outlive its callbacks: free the
 * connection before the metrics. */
struct metrics *metrics_new(struct ev_loop *loop, struct rds_async *rds, size_t nlanes);
void metrics_free(struct metrics *mt);
/* The lane a worker writes (worker_args.stats). */
struct jobstats_lane *metrics_lane(struct metrics *mt, int lane);
/* The lane's worker is dead: its counts move into the master's totals. */
void metrics_fold_lane(struct metrics *mt, int lane);

/* Events from the master. */
void metrics_on_redis(struct metrics *mt, bool up);
void metrics_on_lease(struct metrics *mt, const char *lease);
void metrics_on_beat(struct metrics *mt, double now);
double metrics_last_beat(const struct metrics *mt);

/* Polls the queues cfg names (copied) every METRICS_POLL s; NULL stops. */
void metrics_poll(struct metrics *mt, const struct config *cfg);

/* Writers. metrics_family prints HELP and TYPE; metrics_label prints a
 * label value escaped (backslash, quote, newline). */
void metrics_family(FILE *f, const char *name, const char *type, const char *help);
void metrics_label(FILE *f, const char *value);
/* Job counters and durations: the totals plus the given live lanes. */
void metrics_write_jobs(struct metrics *mt, FILE *f, const int *lanes, size_t nlanes);
/* Redis, leadership, queue gauges. */
void metrics_write_redis(struct metrics *mt, FILE *f, bool redis_up, double now);

#endif
