/* metrics: counters the master keeps, the Redis-side gauges it refreshes
 * on a timer, and the rendering of both. */
#include "metrics.h"

#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#define MS_THRESHOLD 1e11 /* an enqueued_at above this is Sidekiq 8 milliseconds */

struct queue_gauge {
	char *name, *key;
	long long size;
	double oldest; /* enqueued_at of the oldest job, 0 when empty or unknown */
};

struct metrics {
	struct ev_loop *loop;
	struct rds_async *rds;
	struct jobstats_lane *lanes;
	size_t nlanes;
	struct jobstats_totals dead; /* counts of workers that are gone */
	unsigned long long connects;
	double last_beat;
	bool leader;
	long long epoch;
	double rtt, ping_sent; /* seconds; ping_sent > 0 while a PING is out */
	struct queue_gauge *queues;
	size_t nqueues;
	unsigned gen;   /* bumped when the queue list changes */
	bool round_out; /* a queue round is in flight */
	ev_timer poll_w;
};

/* One refresh of every queue: two replies per queue. */
struct round {
	struct metrics *mt;
	unsigned gen;
	int pending;
	size_t n;
	long long *size;
	double *oldest;
};

struct round_req {
	struct round *r;
	size_t idx;
	bool is_len;
};

static void metrics_on_poll(struct ev_loop *loop, ev_timer *w, int revents);

struct metrics *metrics_new(struct ev_loop *loop, struct rds_async *rds, size_t nlanes)
{
	struct jobstats_lane *lanes = jobstats_map(nlanes);
	if (!lanes)
		return NULL;
	struct metrics *mt = xcalloc(1, sizeof(*mt));
	mt->loop = loop;
	mt->rds = rds;
	mt->lanes = lanes;
	mt->nlanes = nlanes;
	ev_timer_init(&mt->poll_w, metrics_on_poll, 0.0, METRICS_POLL);
	mt->poll_w.data = mt;
	return mt;
}

static void metrics_clear_queues(struct metrics *mt)
{
	for (size_t i = 0; i < mt->nqueues; i++) {
		free(mt->queues[i].name);
		free(mt->queues[i].key);
	}
	free(mt->queues);
	mt->queues = NULL;
	mt->nqueues = 0;
	mt->gen++;
}

void metrics_free(struct metrics *mt)
{
	if (!mt)
		return;
	ev_timer_stop(mt->loop, &mt->poll_w);
	metrics_clear_queues(mt);
	jobstats_totals_free(&mt->dead);
	jobstats_unmap(mt->lanes, mt->nlanes);
	free(mt);
}

struct jobstats_lane *metrics_lane(struct metrics *mt, int lane)
{
	return &mt->lanes[lane];
}

void metrics_fold_lane(struct metrics *mt, int lane)
{
	if (!mt)
		return;
	jobstats_fold(&mt->dead, &mt->lanes[lane]);
}

void metrics_on_redis(struct metrics *mt, bool up)
{
	if (!mt)
		return;
	if (up)
		mt->connects++;
	else
		mt->ping_sent = 0; /* its callback comes with NULL */
}

void metrics_on_lease(struct metrics *mt, const char *lease)
{
	if (!mt)
		return;
	const char *bar = lease ? strrchr(lease, '|') : NULL;
	mt->leader = lease != NULL;
	if (bar)
		mt->epoch = atoll(bar + 1);
}

void metrics_on_beat(struct metrics *mt, double now)
{
	if (!mt)
		return;
	mt->last_beat = now;
}

double metrics_last_beat(const struct metrics *mt)
{
	return mt->last_beat;
}

/* ---- the Redis-side gauges ---------------------------------------------- */

static void metrics_on_pong(struct rds_reply *x, void *priv)
{
	struct metrics *mt = priv;
	if (x && mt->ping_sent > 0)
		mt->rtt = util_now_mono() - mt->ping_sent;
	mt->ping_sent = 0;
}

static void round_done(struct round *r)
{
	struct metrics *mt = r->mt;
	if (--r->pending > 0)
		return;
	mt->round_out = false;
	if (r->gen == mt->gen)
		for (size_t i = 0; i < r->n; i++) {
			mt->queues[i].size = r->size[i];
			mt->queues[i].oldest = r->oldest[i];
		}
	free(r->size);
	free(r->oldest);
	free(r);
}

static void metrics_on_queue(struct rds_reply *x, void *priv)
{
	struct round_req *q = priv;
	struct round *r = q->r;
	if (x && q->is_len && rds_type(x) == RDS_INT) {
		r->size[q->idx] = rds_int(x);
	} else if (x && !q->is_len && rds_type(x) == RDS_STR) {
		double t;
		if (!job_json_get_number(rds_str(x, NULL), "enqueued_at", &t))
			r->oldest[q->idx] = t > MS_THRESHOLD ? t / 1000 : t;
	} else if (!x || rds_type(x) != RDS_NIL) {
		r->gen = ~r->mt->gen; /* a failed round changes nothing */
	}
	free(q);
	round_done(r);
}

static void round_call(struct round *r, size_t idx, bool is_len, const char *key)
{
	struct round_req *q = xmalloc(sizeof(*q));
	*q = (struct round_req){r, idx, is_len};
	const char *argv[] = {is_len ? "LLEN" : "LINDEX", key, "-1"};
	if (rds_async_call(r->mt->rds, metrics_on_queue, q, is_len ? 2 : 3, argv, NULL)) {
		free(q);
		r->gen = ~r->mt->gen;
		return;
	}
	r->pending++;
}

static void metrics_on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct metrics *mt = w->data;
	(void)loop;
	(void)revents;
	if (!rds_async_is_up(mt->rds))
		return;
	if (mt->ping_sent <= 0) {
		const char *argv[] = {"PING"};
		mt->ping_sent = util_now_mono();
		if (rds_async_call(mt->rds, metrics_on_pong, mt, 1, argv, NULL))
			mt->ping_sent = 0;
	}
	if (mt->round_out || !mt->nqueues)
		return;
	struct round *r = xcalloc(1, sizeof(*r));
	r->mt = mt;
	r->gen = mt->gen;
	r->n = mt->nqueues;
	r->size = xcalloc(r->n, sizeof(*r->size));
	r->oldest = xcalloc(r->n, sizeof(*r->oldest));
	r->pending = 1; /* ours, until every call is out */
	mt->round_out = true;
	for (size_t i = 0; i < r->n; i++) {
		round_call(r, i, true, mt->queues[i].key);
		round_call(r, i, false, mt->queues[i].key);
	}
	round_done(r);
}

void metrics_poll(struct metrics *mt, const struct config *cfg)
{
	metrics_clear_queues(mt);
	ev_timer_stop(mt->loop, &mt->poll_w);
	if (!cfg)
		return;
	mt->queues = xcalloc(cfg->nqueues, sizeof(*mt->queues));
	mt->nqueues = cfg->nqueues;
	for (size_t i = 0; i < cfg->nqueues; i++) {
		mt->queues[i].name = xstrdup(cfg->queues[i].name);
		mt->queues[i].key = keys_queue(cfg->queues[i].name);
	}
	ev_timer_set(&mt->poll_w, 0.0, METRICS_POLL);
	ev_timer_start(mt->loop, &mt->poll_w);
}

/* ---- text format -------------------------------------------------------- */

void metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_label(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f), fputc(*v, f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static void write_counter(FILE *f, const struct jobstats_totals *t, const char *name,
                          const char *help, size_t field)
{
	metrics_family(f, name, "counter", help);
	for (size_t i = 0; i < t->n; i++) {
		const struct jobstats_row *r = &t->rows[i];
		fprintf(f, "%s{class=", name);
		metrics_label(f, r->job_class);
		fputs(",queue=", f);
		metrics_label(f, r->queue);
		fprintf(
		    f, "} %llu\n",
		    (unsigned long long)*(const uint64_t *)(const void *)((const char *)r + field));
	}
}

/* One histogram per class: its rows (adjacent after sorting) summed. */
static void write_durations(FILE *f, const struct jobstats_totals *t)
{
	const char *name = "forq_job_duration_seconds";
	metrics_family(f, name, "histogram", "Job execution time, by class.");
	for (size_t i = 0; i < t->n;) {
		uint64_t b[JOBSTATS_BUCKETS] = {0}, sum_us = 0, cum = 0;
		size_t j = i;
		for (; j < t->n && !strcmp(t->rows[j].job_class, t->rows[i].job_class); j++) {
			for (size_t k = 0; k < JOBSTATS_BUCKETS; k++)
				b[k] += t->rows[j].buckets[k];
			sum_us += t->rows[j].sum_us;
		}
		for (size_t k = 0; k < JOBSTATS_BUCKETS; k++) {
			cum += b[k];
			fprintf(f, "%s_bucket{class=", name);
			metrics_label(f, t->rows[i].job_class);
			if (k < JOBSTATS_BUCKETS - 1)
				fprintf(f, ",le=\"%g\"} %llu\n", jobstats_bounds[k],
				        (unsigned long long)cum);
			else
				fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		}
		fprintf(f, "%s_sum{class=", name);
		metrics_label(f, t->rows[i].job_class);
		fprintf(f, "} %.6f\n%s_count{class=", (double)sum_us / 1e6, name);
		metrics_label(f, t->rows[i].job_class);
		fprintf(f, "} %llu\n", (unsigned long long)cum);
		i = j;
	}
}

void metrics_write_jobs(struct metrics *mt, FILE *f, const int *lanes, size_t nlanes)
{
	struct jobstats_totals t = {0};
	jobstats_add_totals(&t, &mt->dead);
	for (size_t i = 0; i < nlanes; i++)
		jobstats_add_lane(&t, &mt->lanes[lanes[i]]);
	jobstats_sort(&t);
	write_counter(f, &t, "forq_jobs_processed_total",
	              "Job executions finished, successful or not (Sidekiq's processed).",
	              offsetof(struct jobstats_row, processed));
	write_counter(f, &t, "forq_jobs_failed_total", "Job executions that failed.",
	              offsetof(struct jobstats_row, failed));
	write_counter(f, &t, "forq_jobs_retried_total", "Failed jobs put in the retry set.",
	              offsetof(struct jobstats_row, retried));
	write_counter(f, &t, "forq_jobs_dead_total", "Failed jobs put in the dead set.",
	              offsetof(struct jobstats_row, dead));
	write_durations(f, &t);
	jobstats_totals_free(&t);
}

static void write_gauge(FILE *f, const char *name, const char *help, double v)
{
	metrics_family(f, name, "gauge", help);
	fprintf(f, "%s %.17g\n", name, v);
}

void metrics_write_redis(struct metrics *mt, FILE *f, bool redis_up, double now)
{
	write_gauge(f, "forq_redis_up", "1 while the master's Redis connection is up.", redis_up);
	metrics_family(f, "forq_redis_reconnects_total", "counter",
	               "Connections the master made to Redis after its first.");
	fprintf(f, "forq_redis_reconnects_total %llu\n", mt->connects ? mt->connects - 1 : 0);
	/* A PING still unanswered counts as long as it has waited: a hung
	 * Redis shows as a growing round trip, not as the last good one. */
	double waited = mt->ping_sent > 0 ? util_now_mono() - mt->ping_sent : 0;
	write_gauge(f, "forq_redis_rtt_seconds",
	            "Round-trip time of the master's last PING to Redis (or of the one "
	            "still unanswered, when longer).",
	            waited > mt->rtt ? waited : mt->rtt);
	write_gauge(f, "forq_heartbeat_age_seconds",
	            "Seconds since this node's last heartbeat reached Redis (-1: none yet).",
	            mt->last_beat > 0 ? now - mt->last_beat : -1);
	write_gauge(f, "forq_leader", "1 while this node holds the leader lease.", mt->leader);
	write_gauge(f, "forq_leader_epoch", "Epoch of the last leader lease this node held.",
	            (double)mt->epoch);
	metrics_family(f, "forq_queue_size", "gauge", "Jobs waiting in the queue.");
	for (size_t i = 0; i < mt->nqueues; i++) {
		fputs("forq_queue_size{queue=", f);
		metrics_label(f, mt->queues[i].name);
		fprintf(f, "} %lld\n", mt->queues[i].size);
	}
	metrics_family(f, "forq_queue_latency_seconds", "gauge",
	               "Age of the oldest job waiting in the queue (Sidekiq's latency).");
	for (size_t i = 0; i < mt->nqueues; i++) {
		double old = mt->queues[i].oldest;
		fputs("forq_queue_latency_seconds{queue=", f);
		metrics_label(f, mt->queues[i].name);
		fprintf(f, "} %.3f\n", old > 0 && now > old ? now - old : 0.0);
	}
}
