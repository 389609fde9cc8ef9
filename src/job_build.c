/* job_build: payloads forq writes rather than reads: job_build (forq enqueue,
 * cron), the small rewrites of stored payloads (enqueued_at, members, the
 * work entry), the JSON helpers other modules use and the unique-lock string.
 * Separate from job.c, which parses payloads and handles failures. */
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

/* Times are clamped to this so "%.6f" stays short and keeps its '.'. */
#define TIME_ABS_MAX 1e15
#define JID_LEN 24

/* ---- building and small rewrites ---- */

void job_format_time(char *buf, size_t n, double t)
{
	if (!isfinite(t))
		t = 0;
	if (t > TIME_ABS_MAX)
		t = TIME_ABS_MAX;
	if (t < -TIME_ABS_MAX)
		t = -TIME_ABS_MAX;
	snprintf(buf, n, "%.6f", t);
}

static bool text_is_object(const char *raw)
{
	json_t *o = raw ? json_loads(raw, JOB_LOAD_FLAGS, NULL) : NULL;
	bool ok = json_is_object(o);
	json_decref(o);
	return ok;
}

char *job_with_enqueued_at(const char *raw, double now)
{
	struct members ms;
	char t[64], *out;
	/* not an object: moved on unchanged, so the worker's job_parse sends it
	 * to the dead set with a reason instead of the poller dropping it */
	if (!text_is_object(raw) || job_scan_members(raw, &ms))
		return xstrdup(raw ? raw : "");
	job_format_time(t, sizeof(t), now);
	struct edit ed[] = {{"enqueued_at", t, false}};
	out = job_splice(raw, &ms, ed, ARRAY_SIZE(ed));
	free(ms.m);
	return out;
}

char *job_with_members(const char *raw, const char *const *kv, size_t n)
{
	struct members ms;
	char *out;
	if (!n || n > 8 || !text_is_object(raw) || job_scan_members(raw, &ms))
		return NULL;
	struct edit ed[8];
	for (size_t i = 0; i < n; i++)
		ed[i] = (struct edit){kv[2 * i], kv[2 * i + 1], false};
	out = job_splice(raw, &ms, ed, n);
	free(ms.m);
	return out;
}

char *job_peek_queue(const char *raw)
{
	json_t *o = raw ? json_loads(raw, JOB_LOAD_FLAGS, NULL) : NULL;
	json_t *q = json_object_get(o, "queue"); /* NULL-safe for non-objects */
	char *out = json_is_string(q) ? xstrdup(json_string_value(q)) : NULL;
	json_decref(o);
	return out;
}

char *job_work_entry(const char *queue, const char *raw, double now)
{
	char *q = job_encode_string(queue, 0), *p = job_encode_string(raw, 0);
	double t = isfinite(now) ? floor(now) : 0; /* Time.now.to_i */
	if (fabs(t) > TIME_ABS_MAX)
		t = t > 0 ? TIME_ABS_MAX : -TIME_ABS_MAX;
	char *out = xasprintf("{\"queue\":%s,\"payload\":%s,\"run_at\":%lld}", q, p, (long long)t);
	free(q);
	free(p);
	return out;
}

/* The args text, compacted, when it is a JSON array; NULL with err else. */
static char *build_args(const char *args_json, char *err, size_t errlen)
{
	json_error_t e;
	const char *text = args_json ? args_json : "[]";
	json_t *a = json_loads(text, JOB_LOAD_FLAGS, &e);
	if (!a) {
		util_seterr(err, errlen, "args is not valid JSON: %s at line %d column %d", e.text,
		       e.line, e.column);
		return NULL;
	}
	bool is_array = json_is_array(a);
	json_decref(a);
	if (!is_array) {
		util_seterr(err, errlen, "args must be a JSON array");
		return NULL;
	}
	struct span all = {0, strlen(text)};
	return job_span_compact(text, all);
}

/* "true", "false" or a whole number >= 0, as JSON text; NULL when invalid. */
static const char *build_retry(const char *retry, char *num, size_t n)
{
	long v;
	if (!strcmp(retry, "true") || !strcmp(retry, "false"))
		return retry;
	if (util_parse_long(retry, 0, INT32_MAX, &v))
		return NULL;
	snprintf(num, n, "%ld", v);
	return num;
}

static bool jid_is_valid(const char *jid)
{
	if (!jid || strlen(jid) != JID_LEN)
		return false;
	for (; *jid; jid++)
		if (!((*jid >= '0' && *jid <= '9') || (*jid >= 'a' && *jid <= 'f')))
			return false;
	return true;
}

/* A generated jid must look like Sidekiq's; a given one, like Sidekiq's
 * client accepts, only needs to be a non-empty string. */
static int build_check(const char *job_class, const char *queue, const char *jid, bool generated,
                       char *err, size_t errlen)
{
	if (!job_class || !*job_class || !job_utf8_is_valid(job_class)) {
		util_seterr(err, errlen, "class must be a non-empty UTF-8 string");
		return -1;
	}
	if (!queue || !*queue || !job_utf8_is_valid(queue)) {
		util_seterr(err, errlen, "queue must be a non-empty UTF-8 string");
		return -1;
	}
	if (generated && !jid_is_valid(jid)) {
		util_seterr(err, errlen, "generated jid must be 24 lowercase hex characters");
		return -1;
	}
	if (!generated && (!jid || !*jid || !job_utf8_is_valid(jid))) {
		util_seterr(err, errlen, "jid must be a non-empty UTF-8 string");
		return -1;
	}
	if (!generated && strlen(jid) > JOB_JID_MAX) {
		util_seterr(err, errlen, "jid must be at most %d bytes", JOB_JID_MAX);
		return -1;
	}
	return 0;
}

char *job_build(const char *job_class, const char *args_json, const char *queue, const char *retry,
                const char *jid, const char *rnd_hex, double now, bool scheduled, char *err,
                size_t errlen)
{
	char num[32], t[64], *args, *cls, *q, *id;
	const char *r = NULL;
	struct util_buf b = {0};
	bool generated = !jid;
	if (generated)
		jid = rnd_hex;
	if (!queue)
		queue = "default";
	if (build_check(job_class, queue, jid, generated, err, errlen))
		return NULL;
	if (retry && !(r = build_retry(retry, num, sizeof(num)))) {
		util_seterr(err, errlen, "retry must be true, false or a number of retries");
		return NULL;
	}
	if (!(args = build_args(args_json, err, errlen)))
		return NULL;
	cls = job_encode_string(job_class, 0);
	q = job_encode_string(queue, 0);
	id = job_encode_string(jid, 0);
	job_format_time(t, sizeof(t), now);
	util_buf_adds(&b, "{");
	if (r) {
		util_buf_adds(&b, "\"retry\":");
		util_buf_adds(&b, r);
		util_buf_adds(&b, ",");
	}
	char *rest = xasprintf("\"queue\":%s,\"class\":%s,\"args\":%s,\"jid\":%s,"
	                       "\"created_at\":%s",
	                       q, cls, args, id, t);
	util_buf_adds(&b, rest);
	if (!scheduled) {
		util_buf_adds(&b, ",\"enqueued_at\":");
		util_buf_adds(&b, t);
	}
	util_buf_adds(&b, "}");
	free(rest);
	free(args);
	free(cls);
	free(q);
	free(id);
	return util_buf_take(&b);
}

char *job_json_quote(const char *s)
{
	return job_encode_string(s, 0);
}

char *job_json_get_string(const char *json, const char *key)
{
	json_t *o = json ? json_loads(json, JOB_LOAD_FLAGS, NULL) : NULL;
	json_t *v = json_object_get(o, key);
	char *out = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
	json_decref(o);
	return out;
}

int job_json_get_number(const char *json, const char *key, double *out)
{
	json_t *o = json ? json_loads(json, JOB_LOAD_FLAGS, NULL) : NULL;
	json_t *v = json_object_get(o, key);
	int rc = json_is_number(v) ? (*out = json_number_value(v), 0) : -1;
	json_decref(o);
	return rc;
}

/* Integers stay integers ("1", not "1.0"); only numbers beyond 64 bits,
 * which jansson refuses as integers, are read as reals. */
static json_t *load_args(const char *args_json)
{
	json_t *a = json_loads(args_json, JSON_ALLOW_NUL, NULL);
	if (!a)
		a = json_loads(args_json, JOB_LOAD_FLAGS, NULL);
	if (a && !json_is_array(a)) {
		json_decref(a);
		a = NULL;
	}
	return a;
}

char *job_lock_string(const char *job_class, const char *queue, const char *args_json,
		      const int *positions, size_t npositions)
{
	json_t *a = args_json ? load_args(args_json) : NULL;
	if (!a)
		return NULL;
	json_t *v = a;
	if (npositions) {
		v = json_array();
		for (size_t i = 0; i < npositions; i++) {
			json_t *e = positions[i] >= 0 ? json_array_get(a, (size_t)positions[i]) : NULL;
			json_array_append(v, e ? e : json_null());
		}
	}
	char *canon = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!canon)
		abort(); /* only on OOM */
	char *out = xasprintf("%s\n%s\n%s", job_class, queue, canon);
	free(canon);
	if (v != a)
		json_decref(v);
	json_decref(a);
	return out;
}

char job_json_kind(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
	char kind = !v ? 0 : json_is_array(v) ? '[' : json_is_object(v) ? '{' : 'v';
	json_decref(v);
	return kind;
}
