/* jobstats: per-class, per-queue job counters and duration histograms for
 * /metrics. Each worker lane has a table in shared memory (mapped by the
 * master before the first fork) that only its worker writes, with relaxed
 * atomic stores the master reads without tearing; a row's names are
 * published before its "used" flag (release/acquire). When a worker dies
 * the master folds its lane into totals of its own and zeroes the lane, so
 * every sum stays monotonic when the lane is reused. No syscalls on the
 * worker's side: a hash compare per job, a few stores. */
#ifndef FORQ_JOBSTATS_H
#define FORQ_JOBSTATS_H

#include <stddef.h>
#include <stdint.h>

#define JOBSTATS_ROWS 32       /* (class, queue) pairs per lane, then the overflow row */
#define JOBSTATS_CLASS_MAX 128 /* a longer class name counts in the overflow row */
#define JOBSTATS_QUEUE_MAX 64
#define JOBSTATS_BUCKETS 15      /* duration buckets, the last one +Inf */
#define JOBSTATS_TOTALS_MAX 1000 /* distinct pairs the master keeps before "(other)" */
#define JOBSTATS_OTHER "(other)"

/* Upper bounds (seconds) of the finite buckets. */
extern const double jobstats_bounds[JOBSTATS_BUCKETS - 1];

enum jobstats_outcome { JOBSTATS_OK, JOBSTATS_RETRY, JOBSTATS_DEAD, JOBSTATS_DISCARD };

struct jobstats_row {
	uint32_t used; /* 1 once the names are written */
	uint32_t hash;
	char job_class[JOBSTATS_CLASS_MAX];
	char queue[JOBSTATS_QUEUE_MAX];
	uint64_t processed, failed, retried, dead;
	uint64_t buckets[JOBSTATS_BUCKETS]; /* per bucket, not cumulative */
	uint64_t sum_us;                    /* microseconds of all durations */
};

struct jobstats_lane {
	struct jobstats_row rows[JOBSTATS_ROWS + 1]; /* the last one: overflow */
};

/* Maps n lanes shared with future children: NULL (errno) on failure. */
struct jobstats_lane *jobstats_map(size_t n);
void jobstats_unmap(struct jobstats_lane *lanes, size_t n);

/* Worker side: one finished execution whose outcome is what ("ack",
 * "retry", "dead" or "discard", as worker_add_outcome names them).
 * job_class and queue are copied into a new row the first time the pair
 * is seen. */
void jobstats_record(struct jobstats_lane *lane, const char *job_class, const char *queue,
                     const char *what, double seconds);

/* Master side: a growable table of plain (not shared) rows. */
struct jobstats_totals {
	struct jobstats_row *rows;
	size_t n, cap;
};

/* Adds a lane's rows into t (read with acquire/relaxed loads: the worker
 * may be writing). */
void jobstats_add_lane(struct jobstats_totals *t, const struct jobstats_lane *lane);
void jobstats_add_totals(struct jobstats_totals *t, const struct jobstats_totals *from);
/* The worker is gone: fold its lane into t and zero the lane. */
void jobstats_fold(struct jobstats_totals *t, struct jobstats_lane *lane);
/* Orders rows by class, then queue (for rendering; equal classes adjacent). */
void jobstats_sort(struct jobstats_totals *t);
void jobstats_totals_free(struct jobstats_totals *t);

#endif
