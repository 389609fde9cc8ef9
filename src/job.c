/* job: Sidekiq payloads. Reading goes through jansson; the rewrites forq needs
 * (retry fields, enqueued_at) splice new member values into the original text
 * with a small top-level scanner, so every other byte survives unchanged.
 * This file parses a payload and decides a failure's outcome and rewrite;
 * building payloads and the small rewrites are in job_build.c, the text
 * scanner and encoder in job_text.c. */
#include "job.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_int.h"
#include "util.h"

/* A JSON integer time above this is Sidekiq 8 milliseconds (1e11 s is the
 * year 5138, 1e11 ms is 1973). */
#define MS_THRESHOLD 1e11
/* Caps count^4 in job_retry_delay far below LLONG_MAX (10000^4 = 1e16). */
#define RETRY_COUNT_CAP 10000

/* ---- parsing ---- */

/* A bump allocator for jansson while job_parse builds and drops a payload's
 * tree: its many small allocations then cost no malloc/free each (they were
 * most of a worker's time on NoopJobs). What does not fit comes from malloc;
 * the next parse gets a bigger arena. Workers are single-threaded, and the
 * allocator is installed only for the duration of one parse. */
struct arena {
	char *buf;
	size_t used, cap, want;
};

static struct arena arena;

static void *arena_malloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (arena.used + n <= arena.cap) {
		void *p = arena.buf + arena.used;
		arena.used += n;
		return p;
	}
	if (arena.want < 2 * (arena.used + n) && arena.want < (1u << 20))
		arena.want = 2 * (arena.used + n);
	return malloc(n);
}

static void arena_free(void *p)
{
	char *c = p;
	if (c && !(c >= arena.buf && c < arena.buf + arena.cap))
		free(p);
}

static void arena_begin(void)
{
	if (arena.want > arena.cap) {
		free(arena.buf);
		arena.cap = arena.want;
		arena.buf = xmalloc(arena.cap);
	} else if (!arena.buf) {
		arena.cap = arena.want = 16384;
		arena.buf = xmalloc(arena.cap);
	}
	arena.used = 0;
	json_set_alloc_funcs(arena_malloc, arena_free);
}

static void arena_end(void)
{
	json_set_alloc_funcs(malloc, free);
	arena.used = 0;
}

static json_t *load_object(const char *raw, char *err, size_t errlen)
{
	json_error_t e;
	json_t *o = json_loads(raw, JOB_LOAD_FLAGS, &e);
	if (!o) {
		util_seterr(err, errlen, "payload is not valid JSON: %s at line %d column %d", e.text,
		       e.line, e.column);
		return NULL;
	}
	if (!json_is_object(o)) {
		util_seterr(err, errlen, "payload is not a JSON object");
		json_decref(o);
		return NULL;
	}
	return o;
}

static int check_shape(json_t *o, char *err, size_t errlen)
{
	json_t *c = json_object_get(o, "class"), *a = json_object_get(o, "args");
	if (!c) {
		util_seterr(err, errlen, "payload has no class");
		return -1;
	}
	if (!json_is_string(c) || !json_string_length(c)) {
		util_seterr(err, errlen, "payload \"class\" is not a non-empty string");
		return -1;
	}
	if (a && !json_is_array(a)) {
		util_seterr(err, errlen, "payload \"args\" is not an array");
		return -1;
	}
	return 0;
}

/* A parsed payload with its member spans, for the typed readers below. */
struct doc {
	json_t *o;
	const char *raw;
	struct members ms;
};

static char *doc_string(const struct doc *d, const char *key)
{
	json_t *v = json_object_get(d->o, key);
	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

/* A top-level number: false when absent or not a number. */
static bool doc_number(const struct doc *d, const char *key, double *v, bool *is_int)
{
	json_t *x = json_object_get(d->o, key);
	const struct member *m;
	if (!json_is_number(x))
		return false;
	*v = json_number_value(x);
	m = job_members_find(d->raw, &d->ms, key);
	*is_int = m && job_span_is_int(d->raw, m->val);
	return isfinite(*v);
}

static int clamp_int(double v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : (int)v;
}

/* Epoch seconds: float seconds (6.4/7.x) or integer milliseconds (8.x). */
static double doc_time(const struct doc *d, const char *key)
{
	double v;
	bool is_int;
	if (!doc_number(d, key, &v, &is_int))
		return 0;
	return is_int && v > MS_THRESHOLD ? v / 1000.0 : v;
}

static void read_retry(const struct doc *d, struct job *j)
{
	double v;
	bool is_int;
	j->retry_kind = JOB_RETRY_DEFAULT; /* true, missing, null, or not an Integer */
	if (json_is_false(json_object_get(d->o, "retry")))
		j->retry_kind = JOB_RETRY_NONE;
	else if (doc_number(d, "retry", &v, &is_int) && is_int) {
		j->retry_kind = JOB_RETRY_COUNT;
		j->retry_max = clamp_int(v, 0, INT32_MAX);
	}
	j->retry_count = -1;
	if (doc_number(d, "retry_count", &v, &is_int)) {
		/* may be -1 after the Web UI's "retry now" decrement */
		j->has_retry_count = true;
		j->retry_count = clamp_int(v, INT32_MIN + 1, INT32_MAX - 1);
	}
	if (doc_number(d, "retry_for", &v, &is_int) && v > 0)
		j->retry_for = v;
}

static void read_fields(const struct doc *d, struct job *j)
{
	const struct member *args = job_members_find(d->raw, &d->ms, "args");
	j->job_class = doc_string(d, "class");
	j->wrapped = doc_string(d, "wrapped");
	j->jid = doc_string(d, "jid");
	j->jid_len = json_string_length(json_object_get(d->o, "jid")); /* 0 unless a string */
	j->queue = doc_string(d, "queue");
	j->retry_queue = doc_string(d, "retry_queue");
	if (!j->jid)
		j->jid = xstrdup("");
	if (!j->queue)
		j->queue = xstrdup("");
	j->args_json = args ? job_span_compact(d->raw, args->val) : xstrdup("[]");
	read_retry(d, j);
	j->dead = !json_is_false(json_object_get(d->o, "dead"));
	j->created_at = doc_time(d, "created_at");
	j->enqueued_at = doc_time(d, "enqueued_at");
	j->failed_at = doc_time(d, "failed_at");
	j->unique = doc_string(d, "forq_unique");
	double v;
	bool is_int;
	if (doc_number(d, "forq_unique_ttl", &v, &is_int) && v > 0)
		j->unique_ttl = v;
}

int job_parse(struct job *j, const char *raw, size_t len, char *err, size_t errlen)
{
	const char *nul = memchr(raw, '\0', len);
	struct doc d = {0};
	int rc = -1;
	memset(j, 0, sizeof(*j));
	j->raw = xstrndup(raw, len);
	if (nul) {
		util_seterr(err, errlen, "payload has a NUL byte at offset %zu: JSON text cannot",
			    (size_t)(nul - raw));
		return -1;
	}
	d.raw = j->raw;
	arena_begin();
	if (!(d.o = load_object(d.raw, err, errlen))) {
		arena_end();
		return -1;
	}
	if (check_shape(d.o, err, errlen))
		goto out;
	if (job_scan_members(d.raw, &d.ms)) {
		util_seterr(err, errlen, "payload could not be scanned");
		goto out;
	}
	read_fields(&d, j);
	rc = 0;
	free(d.ms.m);
out:
	json_decref(d.o);
	arena_end();
	return rc;
}

int job_check(const struct job *j, char *err, size_t errlen)
{
	size_t n = strlen(j->jid);
	if (n != j->jid_len) {
		util_seterr(err, errlen, "jid holds a NUL character, which forq cannot carry");
		return -1;
	}
	if (n > JOB_JID_MAX) {
		util_seterr(err, errlen, "jid is %zu bytes, longer than the %d forq can carry", n,
			    JOB_JID_MAX);
		return -1;
	}
	return 0;
}

void job_free(struct job *j)
{
	free(j->raw);
	free(j->job_class);
	free(j->wrapped);
	free(j->jid);
	free(j->queue);
	free(j->args_json);
	free(j->retry_queue);
	free(j->unique);
	memset(j, 0, sizeof(*j));
}

/* ---- failures ---- */

double job_retry_delay(int count, double rnd)
{
	long long c = count < 0 ? 0 : count > RETRY_COUNT_CAP ? RETRY_COUNT_CAP : count;
	long long r = rnd > 0 ? (long long)floor(rnd * 10.0) : 0; /* rand(10) */
	if (r > 9)
		r = 9;
	return (double)(c * c * c * c + 15 + r * (c + 1));
}

static enum job_outcome decide(const struct job *j, const struct job_failure *f, int count)
{
	int max = j->retry_kind == JOB_RETRY_COUNT ? j->retry_max : f->default_max;
	bool retry = count < max;
	if (retry && j->retry_for > 0) {
		/* the first failure is now; later ones compare with the stored failed_at */
		double first = j->has_retry_count && j->failed_at > 0 ? j->failed_at : f->now;
		retry = first + j->retry_for >= f->now;
	}
	if (retry)
		return JOB_OUT_RETRY;
	return j->dead ? JOB_OUT_DEAD : JOB_OUT_DISCARD;
}

/* j->raw with the failure fields spliced in, in the order Ruby adds them. */
static char *failure_text(const struct job *j, const struct job_failure *f, int count)
{
	struct members ms;
	const char *queue = j->retry_queue     ? j->retry_queue
	                    : f->fetched_queue ? f->fetched_queue
	                                       : j->queue;
	char *q = job_encode_string(queue, 0);
	char *msg = job_encode_string(f->error_message, JOB_ERROR_MESSAGE_MAX);
	char *cls = job_encode_string(f->error_class ? f->error_class : "RuntimeError", 0);
	char now[64], cnt[16];
	job_format_time(now, sizeof(now), f->now);
	snprintf(cnt, sizeof(cnt), "%d", count);
	struct edit ed[] = {
	    {"queue", q, false},
	    {"error_message", msg, false},
	    {"error_class", cls, false},
	    {j->has_retry_count ? "retried_at" : "failed_at", now, false},
	    {"retry_count", cnt, false},
	    {"error_backtrace", f->backtrace_json, false},
	};
	size_t ned = f->backtrace_json ? ARRAY_SIZE(ed) : ARRAY_SIZE(ed) - 1;
	char *out = job_scan_members(j->raw, &ms) ? NULL : job_splice(j->raw, &ms, ed, ned);
	free(ms.m);
	free(q);
	free(msg);
	free(cls);
	return out;
}

char *job_failure_payload(const struct job *j, const struct job_failure *f,
                          enum job_outcome *outcome, double *score)
{
	int count = j->has_retry_count ? j->retry_count + 1 : 0;
	char *out;
	*score = f->now;
	if (!j->job_class) { /* never parsed: keep the raw text, as Sidekiq */
		*outcome = JOB_OUT_DEAD;
		return job_dead_raw(j->raw);
	}
	if (f->forced)
		*outcome = (enum job_outcome)(f->forced - 1);
	else
		*outcome = j->retry_kind == JOB_RETRY_NONE ? JOB_OUT_DISCARD : decide(j, f, count);
	if (*outcome == JOB_OUT_DISCARD)
		return NULL;
	if (*outcome == JOB_OUT_RETRY)
		*score = f->now + (f->forced ? f->retry_in : job_retry_delay(count, f->rnd));
	if (!(out = failure_text(j, f, count))) {
		*outcome = JOB_OUT_DEAD;
		*score = f->now;
		out = job_dead_raw(j->raw);
	}
	return out;
}

char *job_dead_raw(const char *raw)
{
	return xstrdup(raw);
}

char *job_lost_payload(const struct job *j, const char *error_message, double now)
{
	struct job_failure f = {.error_class = "Forq::ProcessLost",
				.error_message = error_message,
				.fetched_queue = j->queue ? j->queue : "default",
				.now = now};
	int count = j->has_retry_count ? j->retry_count + 1 : 0;
	char *out = j->job_class ? failure_text(j, &f, count) : NULL;
	return out ? out : job_dead_raw(j->raw);
}
