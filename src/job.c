/* job: Sidekiq payloads. Reading goes through jansson; the rewrites forq needs
 * (retry fields, enqueued_at) splice new member values into the original text
 * with a small top-level scanner, so every other byte survives unchanged. */
#include "job.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A JSON integer time above this is Sidekiq 8 milliseconds (1e11 s is the
 * year 5138, 1e11 ms is 1973). */
#define MS_THRESHOLD 1e11
/* Caps count^4 in job_retry_delay far below LLONG_MAX (10000^4 = 1e16). */
#define RETRY_COUNT_CAP 10000
/* Times are clamped to this so "%.6f" stays short and keeps its '.'. */
#define TIME_ABS_MAX 1e15
#define JID_LEN 24
/* Every number is read as a double, so integers beyond 64 bits (legal JSON,
 * written by Ruby) do not make a valid payload "invalid"; whether a member
 * was written as an integer is read from its text instead. */
#define LOAD_FLAGS (JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/* ---- growing string ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* The built string, owned by the caller ("" when nothing was added). */
static char *buf_take(struct buf *b)
{
	return b->p ? b->p : xstrdup("");
}

/* ---- UTF-8 and string encoding ---- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is invalid
 * (bad lead or continuation byte, overlong form, surrogate, > U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return n;
}

static bool utf8_is_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = utf8_seq_len(p);
		if (!n)
			return false;
		p += n;
	}
	return true;
}

static char *dump_json(json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!s)
		abort(); /* only on OOM: every string handed to jansson is valid UTF-8 */
	char *out = xstrdup(s);
	free(s);
	return out;
}

/* s as a JSON string literal, escaped by jansson. Invalid UTF-8 becomes
 * U+FFFD (as Ruby's scrub) and the text is cut to at most max characters
 * (0 = no limit) without splitting a sequence. NULL encodes as "". */
static char *encode_string(const char *s, size_t max)
{
	struct buf b = {0};
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	for (size_t chars = 0; *p && (!max || chars < max); chars++) {
		size_t n = utf8_seq_len(p);
		if (n)
			buf_add(&b, p, n);
		else
			buf_adds(&b, "\xef\xbf\xbd");
		p += n ? n : 1;
	}
	json_t *js = json_stringn(b.p ? b.p : "", b.len);
	free(b.p);
	if (!js)
		abort();
	char *out = dump_json(js);
	json_decref(js);
	return out;
}

/* ---- top-level member scanner (on text jansson has validated) ---- */

struct span {
	size_t off, len;
};

struct member {
	struct span key, val; /* key includes its quotes */
};

struct members {
	struct member *m;
	size_t n, cap;
	size_t end; /* just after the last value, or after '{' when empty */
};

static size_t skip_ws(const char *s, size_t i)
{
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	return i;
}

/* s[i] is '"'; returns the offset after the closing quote, 0 on error. */
static size_t skip_string(const char *s, size_t i)
{
	for (i++; s[i] && s[i] != '"'; i++)
		if (s[i] == '\\' && s[++i] == '\0')
			return 0;
	return s[i] == '"' ? i + 1 : 0;
}

static size_t skip_container(const char *s, size_t i)
{
	int depth = 0;
	while (s[i]) {
		if (s[i] == '"') {
			if (!(i = skip_string(s, i)))
				return 0;
			continue;
		}
		if (s[i] == '{' || s[i] == '[')
			depth++;
		else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return 0;
}

/* Returns the offset just after the value starting at s[i], 0 on error. */
static size_t skip_value(const char *s, size_t i)
{
	size_t start = i;
	if (s[i] == '"')
		return skip_string(s, i);
	if (s[i] == '{' || s[i] == '[')
		return skip_container(s, i);
	while (s[i] && !strchr(",}] \t\r\n", s[i]))
		i++;
	return i > start ? i : 0;
}

static void members_push(struct members *ms, const struct member *m)
{
	if (ms->n == ms->cap) {
		ms->cap = ms->cap ? ms->cap * 2 : 16;
		ms->m = xrealloc(ms->m, ms->cap * sizeof(*ms->m));
	}
	ms->m[ms->n++] = *m;
}

/* Finds every top-level member of the object text s. 0, or -1 (ms empty). */
static int scan_members(const char *s, struct members *ms)
{
	size_t i = skip_ws(s, 0);
	memset(ms, 0, sizeof(*ms));
	if (s[i] != '{')
		return -1;
	ms->end = i + 1;
	i = skip_ws(s, i + 1);
	if (s[i] == '}')
		return 0;
	for (;;) {
		struct member m;
		m.key.off = i;
		if (s[i] != '"' || !(i = skip_string(s, i)))
			break;
		m.key.len = i - m.key.off;
		i = skip_ws(s, i);
		if (s[i] != ':')
			break;
		m.val.off = i = skip_ws(s, i + 1);
		if (!(i = skip_value(s, i)))
			break;
		m.val.len = i - m.val.off;
		members_push(ms, &m);
		ms->end = i;
		i = skip_ws(s, i);
		if (s[i] == '}')
			return 0;
		if (s[i] != ',')
			break;
		i = skip_ws(s, i + 1);
	}
	free(ms->m);
	memset(ms, 0, sizeof(*ms));
	return -1;
}

/* Whether the quoted key text at span k names `name`; escaped keys
 * ("\u0072etry") are decoded by jansson. */
static bool key_is(const char *s, struct span k, const char *name)
{
	size_t n = strlen(name);
	if (!memchr(s + k.off, '\\', k.len))
		return k.len == n + 2 && !memcmp(s + k.off + 1, name, n);
	json_t *v = json_loadb(s + k.off, k.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	bool same = json_is_string(v) && json_string_length(v) == n &&
	            !memcmp(json_string_value(v), name, n);
	json_decref(v);
	return same;
}

/* The last member named `name` (the one JSON readers use), or NULL. */
static const struct member *members_find(const char *s, const struct members *ms, const char *name)
{
	for (size_t i = ms->n; i-- > 0;)
		if (key_is(s, ms->m[i].key, name))
			return &ms->m[i];
	return NULL;
}

static bool span_is_int(const char *s, struct span v)
{
	if (!v.len || !(s[v.off] == '-' || (s[v.off] >= '0' && s[v.off] <= '9')))
		return false;
	for (size_t i = v.off; i < v.off + v.len; i++)
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
			return false;
	return true;
}

/* The span's text without the white space outside strings. */
static char *span_compact(const char *s, struct span v)
{
	struct buf b = {0};
	size_t i = v.off, end = v.off + v.len;
	while (i < end) {
		if (s[i] == '"') {
			size_t j = skip_string(s, i);
			j = j && j <= end ? j : end;
			buf_add(&b, s + i, j - i);
			i = j;
		} else {
			if (!strchr(" \t\r\n", s[i]))
				buf_add(&b, s + i, 1);
			i++;
		}
	}
	return buf_take(&b);
}

/* ---- splicing ---- */

struct edit {
	const char *key; /* plain ASCII member name */
	const char *val; /* JSON text of the new value */
	bool done;
};

static struct edit *edit_for(const char *s, const struct member *m, struct edit *ed, size_t ned)
{
	for (size_t i = 0; i < ned; i++)
		if (key_is(s, m->key, ed[i].key))
			return &ed[i];
	return NULL;
}

/* s with the value of every member named in ed replaced in place (each
 * occurrence of a duplicated key), and the members not present appended in
 * ed's order just after the last value. Every other byte is copied. */
static char *splice(const char *s, const struct members *ms, struct edit *ed, size_t ned)
{
	struct buf b = {0};
	size_t pos = 0;
	bool empty = ms->n == 0;
	for (size_t i = 0; i < ms->n; i++) {
		const struct member *m = &ms->m[i];
		struct edit *e = edit_for(s, m, ed, ned);
		if (!e)
			continue;
		buf_add(&b, s + pos, m->val.off - pos);
		buf_adds(&b, e->val);
		e->done = true;
		pos = m->val.off + m->val.len;
	}
	buf_add(&b, s + pos, ms->end - pos);
	for (size_t i = 0; i < ned; i++) {
		if (ed[i].done)
			continue;
		buf_adds(&b, empty ? "\"" : ",\"");
		buf_adds(&b, ed[i].key);
		buf_adds(&b, "\":");
		buf_adds(&b, ed[i].val);
		empty = false;
	}
	buf_adds(&b, s + ms->end);
	return buf_take(&b);
}

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
	json_t *o = json_loads(raw, LOAD_FLAGS, &e);
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
	m = members_find(d->raw, &d->ms, key);
	*is_int = m && span_is_int(d->raw, m->val);
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
	const struct member *args = members_find(d->raw, &d->ms, "args");
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
	j->args_json = args ? span_compact(d->raw, args->val) : xstrdup("[]");
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
	if (scan_members(d.raw, &d.ms)) {
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
	char *q = encode_string(queue, 0);
	char *msg = encode_string(f->error_message, JOB_ERROR_MESSAGE_MAX);
	char *cls = encode_string(f->error_class ? f->error_class : "RuntimeError", 0);
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
	char *out = scan_members(j->raw, &ms) ? NULL : splice(j->raw, &ms, ed, ned);
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
	json_t *o = raw ? json_loads(raw, LOAD_FLAGS, NULL) : NULL;
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
	if (!text_is_object(raw) || scan_members(raw, &ms))
		return xstrdup(raw ? raw : "");
	job_format_time(t, sizeof(t), now);
	struct edit ed[] = {{"enqueued_at", t, false}};
	out = splice(raw, &ms, ed, ARRAY_SIZE(ed));
	free(ms.m);
	return out;
}

char *job_with_members(const char *raw, const char *const *kv, size_t n)
{
	struct members ms;
	char *out;
	if (!n || n > 8 || !text_is_object(raw) || scan_members(raw, &ms))
		return NULL;
	struct edit ed[8];
	for (size_t i = 0; i < n; i++)
		ed[i] = (struct edit){kv[2 * i], kv[2 * i + 1], false};
	out = splice(raw, &ms, ed, n);
	free(ms.m);
	return out;
}

char *job_peek_queue(const char *raw)
{
	json_t *o = raw ? json_loads(raw, LOAD_FLAGS, NULL) : NULL;
	json_t *q = json_object_get(o, "queue"); /* NULL-safe for non-objects */
	char *out = json_is_string(q) ? xstrdup(json_string_value(q)) : NULL;
	json_decref(o);
	return out;
}

char *job_work_entry(const char *queue, const char *raw, double now)
{
	char *q = encode_string(queue, 0), *p = encode_string(raw, 0);
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
	json_t *a = json_loads(text, LOAD_FLAGS, &e);
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
	return span_compact(text, all);
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
	if (!job_class || !*job_class || !utf8_is_valid(job_class)) {
		util_seterr(err, errlen, "class must be a non-empty UTF-8 string");
		return -1;
	}
	if (!queue || !*queue || !utf8_is_valid(queue)) {
		util_seterr(err, errlen, "queue must be a non-empty UTF-8 string");
		return -1;
	}
	if (generated && !jid_is_valid(jid)) {
		util_seterr(err, errlen, "generated jid must be 24 lowercase hex characters");
		return -1;
	}
	if (!generated && (!jid || !*jid || !utf8_is_valid(jid))) {
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
	struct buf b = {0};
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
	cls = encode_string(job_class, 0);
	q = encode_string(queue, 0);
	id = encode_string(jid, 0);
	job_format_time(t, sizeof(t), now);
	buf_adds(&b, "{");
	if (r) {
		buf_adds(&b, "\"retry\":");
		buf_adds(&b, r);
		buf_adds(&b, ",");
	}
	char *rest = xasprintf("\"queue\":%s,\"class\":%s,\"args\":%s,\"jid\":%s,"
	                       "\"created_at\":%s",
	                       q, cls, args, id, t);
	buf_adds(&b, rest);
	if (!scheduled) {
		buf_adds(&b, ",\"enqueued_at\":");
		buf_adds(&b, t);
	}
	buf_adds(&b, "}");
	free(rest);
	free(args);
	free(cls);
	free(q);
	free(id);
	return buf_take(&b);
}

char *job_json_quote(const char *s)
{
	return encode_string(s, 0);
}

char *job_json_get_string(const char *json, const char *key)
{
	json_t *o = json ? json_loads(json, LOAD_FLAGS, NULL) : NULL;
	json_t *v = json_object_get(o, key);
	char *out = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
	json_decref(o);
	return out;
}

int job_json_get_number(const char *json, const char *key, double *out)
{
	json_t *o = json ? json_loads(json, LOAD_FLAGS, NULL) : NULL;
	json_t *v = json_object_get(o, key);
	int rc = json_is_number(v) ? (*out = json_number_value(v), 0) : -1;
	json_decref(o);
	return rc;
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

/* Integers stay integers ("1", not "1.0"); only numbers beyond 64 bits,
 * which jansson refuses as integers, are read as reals. */
static json_t *load_args(const char *args_json)
{
	json_t *a = json_loads(args_json, JSON_ALLOW_NUL, NULL);
	if (!a)
		a = json_loads(args_json, LOAD_FLAGS, NULL);
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
