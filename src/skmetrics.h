/* skmetrics: the per-class execution counts behind Sidekiq's Metrics tab
 * (7.0+, on by default): runs, failures, the run time of successes and its
 * histogram, gathered per worker between flushes and written in both the
 * 7.x and 8.x layouts (keys.h) by one metrics.lua call. Pure: no I/O; the
 * caller passes the time and sends the call it builds. */
#ifndef FORQ_SKMETRICS_H
#define FORQ_SKMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SKMETRICS_BUCKETS 26                 /* Sidekiq's Histogram::BUCKET_INTERVALS */
#define SKMETRICS_MAX_CLASSES 1000           /* classes held between two flushes */
#define SKMETRICS_FLUSH 5.0                  /* seconds between flushes (forq's beat) */
#define SKMETRICS_TTL_SHORT (8 * 3600)       /* minute keys and histograms */
#define SKMETRICS_TTL_ROLLUP (3 * 24 * 3600) /* 8.x ten-minute rollup */

struct skmetrics_class {
	char *name;
	long long runs, failures, ms, successes;
	uint32_t hist[SKMETRICS_BUCKETS];
};

struct skmetrics {
	struct skmetrics_class *classes;
	size_t n, cap;
	long long dropped; /* runs of classes that found the table full */
};

/* The histogram bucket of a success that took ms milliseconds: the first
 * bound it is under (20, 30, 45 ... 335000 ms), 25 beyond. */
int skmetrics_bucket(long long ms);
/* Counts one run of job_class (the payload's "wrapped", else "class"):
 * a success adds ms to the run time and its histogram, a failure counts
 * only as a run and a failure, as Sidekiq's ExecutionTracker does. -1 when
 * the class is new and the table is full (counted in dropped). */
int skmetrics_record(struct skmetrics *m, const char *job_class, long long ms, bool failed);
bool skmetrics_is_empty(const struct skmetrics *m);
/* Forgets every count (after a flush reached Redis). */
void skmetrics_clear(struct skmetrics *m);
void skmetrics_free(struct skmetrics *m);

/* The metrics.lua call for the counts at epoch seconds now: keys first
 * (the 7.x minute, 8.x minute and 8.x rollup hashes, then each class's
 * 7.x and 8.x histogram), then the arguments (see src/lua/metrics.lua).
 * argv and lens point into memory the call owns (skmetrics_call_free). */
struct skmetrics_call {
	int nkeys, argc;
	const char **argv;
	size_t *lens;
	char **owned;
	size_t nowned;
};
void skmetrics_build(const struct skmetrics *m, double now, struct skmetrics_call *call);
void skmetrics_call_free(struct skmetrics_call *call);

#endif
