/* jobstats: the lane tables and the master's totals. Rows are found by a
 * hash of class and queue, then compared by name; a lane never frees rows
 * while its worker lives. */
#include "jobstats.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util.h"

const double jobstats_bounds[JOBSTATS_BUCKETS - 1] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
};

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define BUMP(p, v) __atomic_store_n((p), LOAD(p) + (v), __ATOMIC_RELAXED)

struct jobstats_lane *jobstats_map(size_t n)
{
	void *p = mmap(NULL, n * sizeof(struct jobstats_lane), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void jobstats_unmap(struct jobstats_lane *lanes, size_t n)
{
	if (lanes)
		munmap(lanes, n * sizeof(struct jobstats_lane));
}

static uint32_t pair_hash(const char *job_class, const char *queue)
{
	uint32_t h = 2166136261u; /* FNV-1a over "class\0queue" */
	for (const char *p = job_class;; p++) {
		h = (h ^ (unsigned char)*p) * 16777619u;
		if (!*p)
			break;
	}
	for (const char *p = queue; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static bool row_is(const struct jobstats_row *r, uint32_t hash, const char *job_class,
                   const char *queue)
{
	return r->hash == hash && !strcmp(r->job_class, job_class) && !strcmp(r->queue, queue);
}

/* The worker's row for the pair: found, newly published, or the overflow. */
static struct jobstats_row *lane_row(struct jobstats_lane *lane, const char *job_class,
                                     const char *queue)
{
	struct jobstats_row *other = &lane->rows[JOBSTATS_ROWS];
	uint32_t hash = pair_hash(job_class, queue);
	size_t i;
	for (i = 0; i < JOBSTATS_ROWS && lane->rows[i].used; i++)
		if (row_is(&lane->rows[i], hash, job_class, queue))
			return &lane->rows[i];
	if (i == JOBSTATS_ROWS || strlen(job_class) >= JOBSTATS_CLASS_MAX ||
	    strlen(queue) >= JOBSTATS_QUEUE_MAX) {
		if (!other->used) {
			strcpy(other->job_class, JOBSTATS_OTHER);
			strcpy(other->queue, JOBSTATS_OTHER);
			__atomic_store_n(&other->used, 1, __ATOMIC_RELEASE);
		}
		return other;
	}
	struct jobstats_row *r = &lane->rows[i];
	r->hash = hash;
	strcpy(r->job_class, job_class);
	strcpy(r->queue, queue);
	__atomic_store_n(&r->used, 1, __ATOMIC_RELEASE);
	return r;
}

static enum jobstats_outcome outcome_of(const char *what)
{
	static const char *const names[] = {"ack", "retry", "dead", "discard"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(what, names[i]))
			return (enum jobstats_outcome)i;
	return JOBSTATS_DISCARD; /* a failure, neither retried nor dead */
}

void jobstats_record(struct jobstats_lane *lane, const char *job_class, const char *queue,
                     const char *what, double seconds)
{
	struct jobstats_row *r = lane_row(lane, job_class, queue);
	enum jobstats_outcome outcome = outcome_of(what);
	size_t b = 0;
	while (b < JOBSTATS_BUCKETS - 1 && seconds > jobstats_bounds[b])
		b++;
	BUMP(&r->buckets[b], 1);
	BUMP(&r->sum_us, (uint64_t)(seconds > 0 ? seconds * 1e6 : 0));
	BUMP(&r->failed, outcome != JOBSTATS_OK);
	BUMP(&r->retried, outcome == JOBSTATS_RETRY);
	BUMP(&r->dead, outcome == JOBSTATS_DEAD);
	BUMP(&r->processed, 1); /* last: processed never lags the others */
}

/* ---- master side -------------------------------------------------------- */

static struct jobstats_row *totals_row(struct jobstats_totals *t, const char *job_class,
                                       const char *queue)
{
	uint32_t hash = pair_hash(job_class, queue);
	for (size_t i = 0; i < t->n; i++)
		if (row_is(&t->rows[i], hash, job_class, queue))
			return &t->rows[i];
	if (t->n >= JOBSTATS_TOTALS_MAX && strcmp(job_class, JOBSTATS_OTHER))
		return totals_row(t, JOBSTATS_OTHER, JOBSTATS_OTHER);
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->rows = xrealloc(t->rows, t->cap * sizeof(*t->rows));
	}
	struct jobstats_row *r = &t->rows[t->n++];
	memset(r, 0, sizeof(*r));
	r->used = 1;
	r->hash = hash;
	util_strlcpy(r->job_class, job_class, sizeof(r->job_class));
	util_strlcpy(r->queue, queue, sizeof(r->queue));
	return r;
}

static void row_add(struct jobstats_totals *t, const struct jobstats_row *src)
{
	struct jobstats_row *r = totals_row(t, src->job_class, src->queue);
	r->processed += LOAD(&src->processed);
	r->failed += LOAD(&src->failed);
	r->retried += LOAD(&src->retried);
	r->dead += LOAD(&src->dead);
	for (size_t b = 0; b < JOBSTATS_BUCKETS; b++)
		r->buckets[b] += LOAD(&src->buckets[b]);
	r->sum_us += LOAD(&src->sum_us);
}

void jobstats_add_lane(struct jobstats_totals *t, const struct jobstats_lane *lane)
{
	for (size_t i = 0; i <= JOBSTATS_ROWS; i++)
		if (__atomic_load_n(&lane->rows[i].used, __ATOMIC_ACQUIRE))
			row_add(t, &lane->rows[i]);
}

void jobstats_add_totals(struct jobstats_totals *t, const struct jobstats_totals *from)
{
	for (size_t i = 0; i < from->n; i++)
		row_add(t, &from->rows[i]);
}

void jobstats_fold(struct jobstats_totals *t, struct jobstats_lane *lane)
{
	jobstats_add_lane(t, lane);
	memset(lane, 0, sizeof(*lane));
}

static int row_cmp(const void *a, const void *b)
{
	const struct jobstats_row *x = a, *y = b;
	int c = strcmp(x->job_class, y->job_class);
	return c ? c : strcmp(x->queue, y->queue);
}

void jobstats_sort(struct jobstats_totals *t)
{
	if (t->n)
		qsort(t->rows, t->n, sizeof(*t->rows), row_cmp);
}

void jobstats_totals_free(struct jobstats_totals *t)
{
	free(t->rows);
	memset(t, 0, sizeof(*t));
}
