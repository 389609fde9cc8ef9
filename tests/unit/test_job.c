/* Unit tests for job: parsing (seconds and milliseconds, retry kinds,
 * malformed payloads), the failure rewrite and its outcomes, Sidekiq's retry
 * delay, enqueued_at splicing, job_build and the work entry. Rewritten
 * payloads are compared as whole strings, so any byte the splice loses or
 * adds fails, and every produced payload is parsed back with jansson. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "job.h"
#include "util.h"

#define EPS 1e-6
#define J16 "0123456789abcdef"
#define J127 J16 J16 J16 J16 J16 J16 J16 "0123456789abcde"
#define J128 J127 "f"
#define NOW 1795380188.3266728

/* Sidekiq 6.4.1's own payload (research §3). */
#define P64_HEAD                                                                                   \
	"{\"retry\":true,\"queue\":\"default\",\"class\":\"OkWorker\",\"args\":[1,\"x\"],"         \
	"\"jid\":\"ef7261af163d3cfec25c3f66\",\"created_at\":1795380180.9767904,"                  \
	"\"enqueued_at\":1795380180.9770389"
#define P64 P64_HEAD "}"

static char err[512];

/* Parses s with jansson (every number as a double unless exact_ints) and
 * fails the test unless it is a JSON object. Caller decrefs. */
static json_t *load(const char *s, bool exact_ints)
{
	json_error_t e;
	json_t *o = json_loads(s, exact_ints ? 0 : JSON_DECODE_INT_AS_REAL, &e);
	ck_assert_msg(o != NULL, "not valid JSON (%s): %s", e.text, s);
	ck_assert_msg(json_is_object(o), "not an object: %s", s);
	return o;
}

/* job_parse of a C string. */
static int parse(struct job *j, const char *raw, char *e, size_t n)
{
	return job_parse(j, raw, strlen(raw), e, n);
}

static void parse_ok(struct job *j, const char *raw)
{
	err[0] = '\0';
	ck_assert_msg(parse(j, raw, err, sizeof(err)) == 0, "parse failed: %s", err);
}

static struct job_failure failure(const char *cls, const char *msg, double now, double rnd)
{
	struct job_failure f = {
	    .error_class = cls,
	    .error_message = msg,
	    .fetched_queue = "default",
	    .default_max = JOB_MAX_RETRIES_DEFAULT,
	    .now = now,
	    .rnd = rnd,
	};
	return f;
}

/* Parses raw, fails it once with f and returns the new payload (or NULL). */
static char *fail_once(const char *raw, const struct job_failure *f, enum job_outcome *out,
                       double *score)
{
	struct job j;
	parse_ok(&j, raw);
	char *p = job_failure_payload(&j, f, out, score);
	job_free(&j);
	if (p)
		json_decref(load(p, false));
	return p;
}

/* ---- parsing ---- */

START_TEST(test_parse_sidekiq_payload)
{
	struct job j;
	parse_ok(&j, P64);
	ck_assert_str_eq(j.raw, P64);
	ck_assert_str_eq(j.job_class, "OkWorker");
	ck_assert_str_eq(j.jid, "ef7261af163d3cfec25c3f66");
	ck_assert_str_eq(j.queue, "default");
	ck_assert_str_eq(j.args_json, "[1,\"x\"]");
	ck_assert_ptr_null(j.retry_queue);
	ck_assert_int_eq(j.retry_kind, JOB_RETRY_DEFAULT);
	ck_assert(!j.has_retry_count);
	ck_assert_int_eq(j.retry_count, -1);
	ck_assert(j.dead);
	ck_assert_double_eq_tol(j.created_at, 1795380180.9767904, EPS);
	ck_assert_double_eq_tol(j.enqueued_at, 1795380180.9770389, EPS);
	ck_assert_double_eq(j.failed_at, 0);
	ck_assert_double_eq(j.retry_for, 0);
	job_free(&j);
	ck_assert_ptr_null(j.raw);
}
END_TEST

START_TEST(test_parse_times_seconds_and_ms)
{
	struct job j;
	/* 8.x integer ms, 6.4 float seconds, integer seconds */
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"created_at\":1795380187995,"
	             "\"enqueued_at\":1795380187.9958882,\"failed_at\":1795380187}");
	ck_assert_double_eq_tol(j.created_at, 1795380187.995, EPS);
	ck_assert_double_eq_tol(j.enqueued_at, 1795380187.9958882, EPS);
	ck_assert_double_eq_tol(j.failed_at, 1795380187.0, EPS);
	job_free(&j);
	/* a float is seconds even when written with an exponent */
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"created_at\":1.7953801879958882e9,"
	             "\"failed_at\":1795380190500}");
	ck_assert_double_eq_tol(j.created_at, 1795380187.9958882, EPS);
	ck_assert_double_eq_tol(j.failed_at, 1795380190.5, EPS);
	job_free(&j);
	/* only an integer is milliseconds: a float is seconds however large */
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"enqueued_at\":1795380187995.5}");
	ck_assert_double_eq_tol(j.enqueued_at, 1795380187995.5, EPS);
	job_free(&j);
	/* not numbers: absent */
	parse_ok(&j,
	         "{\"class\":\"A\",\"args\":[],\"created_at\":\"yesterday\",\"enqueued_at\":null}");
	ck_assert_double_eq(j.created_at, 0);
	ck_assert_double_eq(j.enqueued_at, 0);
	job_free(&j);
}
END_TEST

START_TEST(test_parse_retry_kinds)
{
	static const struct {
		const char *retry;
		enum job_retry_kind kind;
		int max;
	} cases[] = {
	    {"true", JOB_RETRY_DEFAULT, 0},  {"false", JOB_RETRY_NONE, 0},
	    {"0", JOB_RETRY_COUNT, 0},       {"2", JOB_RETRY_COUNT, 2},
	    {"25", JOB_RETRY_COUNT, 25},     {"-3", JOB_RETRY_COUNT, 0},
	    {"null", JOB_RETRY_DEFAULT, 0},  {"2.0", JOB_RETRY_DEFAULT, 0}, /* a Float */
	    {"\"5\"", JOB_RETRY_DEFAULT, 0}, {"99999999999", JOB_RETRY_COUNT, 2147483647},
	};
	char raw[128];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct job j;
		snprintf(raw, sizeof(raw), "{\"class\":\"A\",\"args\":[],\"retry\":%s}",
		         cases[i].retry);
		parse_ok(&j, raw);
		ck_assert_msg(j.retry_kind == cases[i].kind, "retry %s: kind %d", cases[i].retry,
		              j.retry_kind);
		if (cases[i].kind == JOB_RETRY_COUNT)
			ck_assert_int_eq(j.retry_max, cases[i].max);
		job_free(&j);
	}
	struct job j;
	parse_ok(&j, "{\"class\":\"A\",\"args\":[]}");
	ck_assert_int_eq(j.retry_kind, JOB_RETRY_DEFAULT);
	job_free(&j);
}
END_TEST

START_TEST(test_parse_retry_state)
{
	struct job j;
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"retry_count\":3,\"failed_at\":1795380000.5,"
	             "\"retry_queue\":\"slow\",\"dead\":false,\"retry_for\":3600}");
	ck_assert(j.has_retry_count);
	ck_assert_int_eq(j.retry_count, 3);
	ck_assert_double_eq_tol(j.failed_at, 1795380000.5, EPS);
	ck_assert_str_eq(j.retry_queue, "slow");
	ck_assert(!j.dead);
	ck_assert_double_eq(j.retry_for, 3600);
	job_free(&j);
	/* the Web UI's "retry now" leaves retry_count -1 after a first failure */
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"retry_count\":-1,\"dead\":true}");
	ck_assert(j.has_retry_count);
	ck_assert_int_eq(j.retry_count, -1);
	ck_assert(j.dead);
	job_free(&j);
	/* a null retry_count is no retry_count */
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"retry_count\":null,\"dead\":null}");
	ck_assert(!j.has_retry_count);
	ck_assert(j.dead);
	job_free(&j);
}
END_TEST

START_TEST(test_parse_big_numbers_and_compact_args)
{
	struct job j;
	parse_ok(&j, "{\"class\":\"A\",\"args\" : [ 12345678901234567890 , -98765432109876543210,"
	             "\n 1795380437.1660569, \"a  b\", {\"k\" : [ 1 ]} ],\"jid\":7}");
	ck_assert_str_eq(j.args_json, "[12345678901234567890,-98765432109876543210,"
	                              "1795380437.1660569,\"a  b\",{\"k\":[1]}]");
	ck_assert_str_eq(j.jid, ""); /* not a string */
	ck_assert_str_eq(j.queue, "");
	job_free(&j);
	parse_ok(&j, "{\"class\":\"A\"}");
	ck_assert_str_eq(j.args_json, "[]");
	job_free(&j);
}
END_TEST

START_TEST(test_parse_escaped_and_duplicate_keys)
{
	struct job j;
	parse_ok(&j, "{\"\\u0063lass\":\"A\",\"args\":[],\"retry_\\u0063ount\":4}");
	ck_assert_str_eq(j.job_class, "A");
	ck_assert(j.has_retry_count);
	ck_assert_int_eq(j.retry_count, 4);
	job_free(&j);
	/* JSON readers (jansson, Ruby) keep the last of duplicated keys */
	parse_ok(&j, "{\"class\":\"A\",\"class\":\"B\",\"args\":[],\"retry\":1,\"retry\":false}");
	ck_assert_str_eq(j.job_class, "B");
	ck_assert_int_eq(j.retry_kind, JOB_RETRY_NONE);
	job_free(&j);
	/* the integer test and args text also come from the last occurrence */
	parse_ok(&j, "{\"class\":\"A\",\"args\":[1],\"retry\":2.5,\"args\":[2],\"retry\":3}");
	ck_assert_int_eq(j.retry_kind, JOB_RETRY_COUNT);
	ck_assert_int_eq(j.retry_max, 3);
	ck_assert_str_eq(j.args_json, "[2]");
	job_free(&j);
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"retry\":3,\"retry\":2.5}");
	ck_assert_int_eq(j.retry_kind, JOB_RETRY_DEFAULT);
	job_free(&j);
}
END_TEST

/* Each malformed payload fails with a message naming the problem, keeps a
 * copy of raw and leaves every other field zero. */
START_TEST(test_parse_malformed)
{
	static const struct {
		const char *raw, *needle;
	} cases[] = {
	    {"not json", "payload is not valid JSON: "},
	    {"", "payload is not valid JSON: "},
	    {"{\"class\":\"A\",\"args\":[]", "payload is not valid JSON: "},
	    {"{\"class\":\"A\",\"args\":[]} x", "payload is not valid JSON: "},
	    {"5", "payload is not valid JSON: "},
	    {"\"str\"", "payload is not valid JSON: "},
	    {"[1,2]", "payload is not a JSON object"},
	    {"{\"args\":[]}", "payload has no class"},
	    {"{\"class\":5,\"args\":[]}", "\"class\" is not a non-empty string"},
	    {"{\"class\":null,\"args\":[]}", "\"class\" is not a non-empty string"},
	    {"{\"class\":\"\",\"args\":[]}", "\"class\" is not a non-empty string"},
	    {"{\"class\":\"A\",\"args\":{}}", "\"args\" is not an array"},
	    {"{\"class\":\"A\",\"args\":\"1\"}", "\"args\" is not an array"},
	    {"{\"class\":\"A\",\"args\":null}", "\"args\" is not an array"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct job j;
		err[0] = '\0';
		ck_assert_msg(parse(&j, cases[i].raw, err, sizeof(err)) == -1, "accepted: %s",
		              cases[i].raw);
		ck_assert_msg(strstr(err, cases[i].needle) != NULL, "'%s' gave '%s'", cases[i].raw,
		              err);
		ck_assert_str_eq(j.raw, cases[i].raw);
		ck_assert_ptr_null(j.job_class);
		ck_assert_ptr_null(j.jid);
		ck_assert_ptr_null(j.queue);
		ck_assert_ptr_null(j.args_json);
		ck_assert_ptr_null(j.retry_queue);
		job_free(&j);
	}
}
END_TEST

START_TEST(test_parse_error_has_jansson_position)
{
	struct job j;
	ck_assert_int_eq(parse(&j, "{\"class\":\"A\",\n \"args\": [1,,2]}", err, sizeof(err)),
	                 -1);
	ck_assert_msg(strstr(err, "at line 2 column") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "unexpected token") != NULL, "%s", err);
	job_free(&j);
	/* a tiny or missing buffer is fine */
	char small[8];
	ck_assert_int_eq(parse(&j, "nope", small, sizeof(small)), -1);
	ck_assert_uint_eq(strlen(small), 7);
	job_free(&j);
	ck_assert_int_eq(parse(&j, "nope", NULL, 0), -1);
	job_free(&j);
}
END_TEST

/* ---- failures ---- */

START_TEST(test_first_failure)
{
	struct job_failure f = failure("ArgumentError", "Boom", NOW, 0.85);
	enum job_outcome out;
	double score;
	char *p = fail_once(P64, &f, &out, &score);
	ck_assert_str_eq(p,
	                 P64_HEAD ",\"error_message\":\"Boom\",\"error_class\":\"ArgumentError\","
	                          "\"failed_at\":1795380188.326673,\"retry_count\":0}");
	ck_assert_int_eq(out, JOB_OUT_RETRY);
	/* research §6.2's live example: 0^4 + 15 + 8 * 1 = 23 s */
	ck_assert_double_eq_tol(score, NOW + 23, EPS);
	json_t *o = load(p, true);
	ck_assert(json_is_integer(json_object_get(o, "retry_count")));
	ck_assert(json_is_real(json_object_get(o, "failed_at")));
	ck_assert_ptr_null(json_object_get(o, "retried_at"));
	json_decref(o);
	free(p);
}
END_TEST

START_TEST(test_second_failure_updates_in_place)
{
	const char *in = P64_HEAD ",\"error_message\":\"Boom\",\"error_class\":\"ArgumentError\","
	                          "\"failed_at\":1795380188.326673,\"retry_count\":0}";
	struct job_failure f = failure("ArgumentError", "Boom again", 1795380215.5, 0.0);
	enum job_outcome out;
	double score;
	char *p = fail_once(in, &f, &out, &score);
	ck_assert_str_eq(p, P64_HEAD
	                 ",\"error_message\":\"Boom again\",\"error_class\":\"ArgumentError\","
	                 "\"failed_at\":1795380188.326673,\"retry_count\":1,"
	                 "\"retried_at\":1795380215.500000}");
	ck_assert_int_eq(out, JOB_OUT_RETRY);
	ck_assert_double_eq_tol(score, 1795380215.5 + 16, EPS);
	json_t *o = load(p, true);
	ck_assert(json_is_real(json_object_get(o, "retried_at")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "retry_count")), 1);
	json_decref(o);
	free(p);
}
END_TEST

/* A plugin with its own retry policy (the Ruby plugin) forces the outcome
 * and the delay, and adds error_backtrace after the retry fields, as
 * Sidekiq's JobRetry does; a later failure replaces it in place. */
START_TEST(test_forced_outcome_and_backtrace)
{
	struct job_failure f = failure("ArgumentError", "Boom", NOW, 0.85);
	enum job_outcome out;
	double score;
	f.forced = 1 + JOB_OUT_RETRY;
	f.retry_in = 7.5;
	f.backtrace_json = "\"eJyLjgUAARUAuQ==\\n\"";
	char *p = fail_once(P64, &f, &out, &score);
	ck_assert_str_eq(p,
	                 P64_HEAD ",\"error_message\":\"Boom\",\"error_class\":\"ArgumentError\","
	                          "\"failed_at\":1795380188.326673,\"retry_count\":0,"
	                          "\"error_backtrace\":\"eJyLjgUAARUAuQ==\\n\"}");
	ck_assert_int_eq(out, JOB_OUT_RETRY);
	ck_assert_double_eq_tol(score, NOW + 7.5, EPS);
	f.backtrace_json = "\"x\"";
	f.forced = 1 + JOB_OUT_DEAD;
	char *q = fail_once(p, &f, &out, &score);
	ck_assert_int_eq(out, JOB_OUT_DEAD);
	ck_assert_double_eq_tol(score, NOW, EPS);
	ck_assert_ptr_nonnull(strstr(q, "\"error_backtrace\":\"x\",\"retried_at\":"));
	ck_assert_ptr_null(strstr(q, "eJyL"));
	f.forced = 1 + JOB_OUT_DISCARD;
	char *r = fail_once(q, &f, &out, &score);
	ck_assert_int_eq(out, JOB_OUT_DISCARD);
	ck_assert_ptr_null(r);
	free(p);
	free(q);
}
END_TEST

/* Big integers, float digits, exponents, nested look-alike strings,
 * unknown fields, white space and key order all come back byte for byte. */
#define WS_HEAD                                                                                    \
	"{ \"class\" : \"BigJob\",\n"                                                              \
	"  \"args\" : [12345678901234567890, 1795380437.1660569, {\"k\":\"}\\\"]\"}, -0.0, "       \
	"1.0e+20, 1.5e-05],\n"                                                                     \
	"  \"bid\": \"b-1\", \"cattr\": {\"a\": [1, {\"b\": null}]}, \"tags\":[\"x\"],\n"          \
	"  \"retry\": 3, \"retry_count\": "
#define WS_MID                                                                                     \
	", \"failed_at\": 1795380437.1660569,\n  \"queue\":\"q1\" , \"zzz\": "                     \
	"\"\\u00e9\\ud83d\\ude00\""

START_TEST(test_splice_preserves_every_other_byte)
{
	const char *in = WS_HEAD "1" WS_MID "\n}\n";
	struct job_failure f = failure("E", "x", 1795380500.25, 0.5);
	f.fetched_queue = "q1";
	enum job_outcome out;
	double score;
	char *p = fail_once(in, &f, &out, &score);
	ck_assert_str_eq(p, WS_HEAD "2" WS_MID ",\"error_message\":\"x\",\"error_class\":\"E\","
	                            "\"retried_at\":1795380500.250000\n}\n");
	ck_assert_int_eq(out, JOB_OUT_RETRY); /* 2 < retry 3 */
	ck_assert_double_eq_tol(score, 1795380500.25 + 16 + 15 + 5 * 3, EPS);
	free(p);
}
END_TEST

START_TEST(test_splice_escaped_and_duplicate_keys)
{
	struct job_failure f = failure("E", "m", 1795380500.0, 0.0);
	f.fetched_queue = "c";
	enum job_outcome out;
	double score;
	char *p = fail_once("{\"class\":\"X\",\"args\":[],\"queue\":\"a\",\"retry_\\u0063ount\":4,"
	                    "\"queue\":\"b\"}",
	                    &f, &out, &score);
	ck_assert_str_eq(p, "{\"class\":\"X\",\"args\":[],\"queue\":\"c\",\"retry_\\u0063ount\":5,"
	                    "\"queue\":\"c\",\"error_message\":\"m\",\"error_class\":\"E\","
	                    "\"retried_at\":1795380500.000000}");
	free(p);
}
END_TEST

START_TEST(test_failure_queue_choice)
{
	enum job_outcome out;
	double score;
	struct job_failure f = failure("E", "m", 1795380500.0, 0.0);
	/* retry_queue wins over the queue it was fetched from */
	f.fetched_queue = "fetched";
	char *p = fail_once("{\"class\":\"X\",\"args\":[],\"queue\":\"a\",\"retry_queue\":\"rq\"}",
	                    &f, &out, &score);
	ck_assert_str_eq(
	    p, "{\"class\":\"X\",\"args\":[],\"queue\":\"rq\",\"retry_queue\":\"rq\","
	       "\"error_message\":\"m\",\"error_class\":\"E\",\"failed_at\":1795380500.000000,"
	       "\"retry_count\":0}");
	free(p);
	/* no retry_queue: the fetched queue, even when the payload says another */
	p = fail_once("{\"class\":\"X\",\"args\":[],\"queue\":\"a\"}", &f, &out, &score);
	ck_assert_str_eq(
	    p, "{\"class\":\"X\",\"args\":[],\"queue\":\"fetched\",\"error_message\":\"m\","
	       "\"error_class\":\"E\",\"failed_at\":1795380500.000000,\"retry_count\":0}");
	free(p);
	/* no queue key at all: appended first, as Ruby assigns it first */
	p = fail_once("{\"class\":\"X\",\"args\":[]}", &f, &out, &score);
	ck_assert_str_eq(
	    p, "{\"class\":\"X\",\"args\":[],\"queue\":\"fetched\",\"error_message\":\"m\","
	       "\"error_class\":\"E\",\"failed_at\":1795380500.000000,\"retry_count\":0}");
	free(p);
	/* a NULL error class still gives a valid payload with a class name */
	f.error_class = NULL;
	f.error_message = NULL;
	p = fail_once("{\"class\":\"X\",\"args\":[]}", &f, &out, &score);
	ck_assert_ptr_nonnull(strstr(p, "\"error_message\":\"\",\"error_class\":\"RuntimeError\""));
	free(p);
}
END_TEST

/* The outcome for a payload failing with `retry_count` already at rc (-2 =
 * absent), and the retry_count written. */
static enum job_outcome outcome_of(const char *opts, int rc, int default_max, int *written)
{
	char raw[256];
	if (rc == -2)
		snprintf(raw, sizeof(raw), "{\"class\":\"X\",\"args\":[]%s}", opts);
	else
		snprintf(raw, sizeof(raw),
		         "{\"class\":\"X\",\"args\":[]%s,\"retry_count\":%d,"
		         "\"failed_at\":1795380000.0}",
		         opts, rc);
	struct job_failure f = failure("E", "m", 1795380100.0, 0.3);
	f.default_max = default_max;
	enum job_outcome out;
	double score;
	char *p = fail_once(raw, &f, &out, &score);
	*written = -100;
	if (p) {
		json_t *o = load(p, true);
		*written = (int)json_integer_value(json_object_get(o, "retry_count"));
		json_decref(o);
		ck_assert_double_eq_tol(
		    score, out == JOB_OUT_DEAD ? f.now : f.now + job_retry_delay(*written, f.rnd),
		    EPS);
	}
	free(p);
	return out;
}

START_TEST(test_outcomes)
{
	int w;
	/* retry true / missing: default 25; dies when retry_count becomes 25 */
	ck_assert_int_eq(outcome_of(",\"retry\":true", -2, 25, &w), JOB_OUT_RETRY);
	ck_assert_int_eq(w, 0);
	ck_assert_int_eq(outcome_of(",\"retry\":true", 23, 25, &w), JOB_OUT_RETRY);
	ck_assert_int_eq(w, 24);
	ck_assert_int_eq(outcome_of(",\"retry\":true", 24, 25, &w), JOB_OUT_DEAD);
	ck_assert_int_eq(w, 25);
	ck_assert_int_eq(outcome_of("", 24, 25, &w), JOB_OUT_DEAD);
	/* the class default applies only when retry is not an integer */
	ck_assert_int_eq(outcome_of("", 1, 3, &w), JOB_OUT_RETRY);
	ck_assert_int_eq(outcome_of("", 2, 3, &w), JOB_OUT_DEAD);
	ck_assert_int_eq(outcome_of(",\"retry\":5", 2, 3, &w), JOB_OUT_RETRY);
	/* retry 0: straight to dead with retry_count 0 */
	ck_assert_int_eq(outcome_of(",\"retry\":0", -2, 25, &w), JOB_OUT_DEAD);
	ck_assert_int_eq(w, 0);
	ck_assert_int_eq(outcome_of(",\"retry\":-1", -2, 25, &w), JOB_OUT_DEAD);
	/* retry 2: 3 executions, the dead entry has retry_count 2 */
	ck_assert_int_eq(outcome_of(",\"retry\":2", -2, 25, &w), JOB_OUT_RETRY);
	ck_assert_int_eq(outcome_of(",\"retry\":2", 0, 25, &w), JOB_OUT_RETRY);
	ck_assert_int_eq(w, 1);
	ck_assert_int_eq(outcome_of(",\"retry\":2", 1, 25, &w), JOB_OUT_DEAD);
	ck_assert_int_eq(w, 2);
	/* retry false: discarded at once, nothing written */
	ck_assert_int_eq(outcome_of(",\"retry\":false", -2, 25, &w), JOB_OUT_DISCARD);
	ck_assert_int_eq(w, -100);
	/* dead false: retries as usual, discarded instead of dead */
	ck_assert_int_eq(outcome_of(",\"retry\":1,\"dead\":false", -2, 25, &w), JOB_OUT_RETRY);
	ck_assert_int_eq(outcome_of(",\"retry\":1,\"dead\":false", 0, 25, &w), JOB_OUT_DISCARD);
	ck_assert_int_eq(w, -100);
	ck_assert_int_eq(outcome_of(",\"retry\":0,\"dead\":false", -2, 25, &w), JOB_OUT_DISCARD);
	ck_assert_int_eq(outcome_of(",\"retry\":0,\"dead\":true", -2, 25, &w), JOB_OUT_DEAD);
	/* Web UI "retry now" decrement: -1 + 1 = 0, a retry, not a first failure */
	ck_assert_int_eq(outcome_of(",\"retry\":0", -1, 25, &w), JOB_OUT_DEAD);
	ck_assert_int_eq(w, 0);
}
END_TEST

START_TEST(test_outcome_retry_for)
{
	int w;
	/* failed_at 1795380000, now 1795380100: 100 s since the first failure */
	ck_assert_int_eq(outcome_of(",\"retry_for\":100", 0, 25, &w), JOB_OUT_RETRY);
	ck_assert_int_eq(outcome_of(",\"retry_for\":99", 0, 25, &w), JOB_OUT_DEAD);
	ck_assert_int_eq(outcome_of(",\"retry_for\":99,\"dead\":false", 0, 25, &w),
	                 JOB_OUT_DISCARD);
	/* the first failure starts the clock now */
	ck_assert_int_eq(outcome_of(",\"retry_for\":1", -2, 25, &w), JOB_OUT_RETRY);
	/* the count limit still applies */
	ck_assert_int_eq(outcome_of(",\"retry_for\":100000,\"retry\":1", 0, 25, &w), JOB_OUT_DEAD);

	/* failed_at written by a Sidekiq 8 client in ms */
	struct job_failure f = failure("E", "m", 1795380100.0, 0.0);
	enum job_outcome out;
	double score;
	char *p = fail_once("{\"class\":\"X\",\"args\":[],\"retry_for\":60,\"retry_count\":0,"
	                    "\"failed_at\":1795380050000}",
	                    &f, &out, &score);
	ck_assert_int_eq(out, JOB_OUT_RETRY);
	ck_assert_ptr_nonnull(strstr(p, "\"failed_at\":1795380050000,")); /* kept as written */
	free(p);
	p = fail_once("{\"class\":\"X\",\"args\":[],\"retry_for\":60,\"retry_count\":0,"
	              "\"failed_at\":1795380030000}",
	              &f, &out, &score);
	ck_assert_int_eq(out, JOB_OUT_DEAD);
	free(p);
}
END_TEST

/* A default job failing forever: 26 executions, retry_count 0..25, failed_at
 * from the first failure, retried_at from each later one. */
START_TEST(test_retry_progression)
{
	char *payload = strdup(P64);
	double now = 1795380200.0, first = now;
	int executions = 0;
	for (;;) {
		struct job_failure f = failure("RuntimeError", "again", now, 0.5);
		enum job_outcome out;
		double score;
		char *next = fail_once(payload, &f, &out, &score);
		executions++;
		json_t *o = load(next, true);
		ck_assert_int_eq(json_integer_value(json_object_get(o, "retry_count")),
		                 executions - 1);
		ck_assert_double_eq_tol(json_real_value(json_object_get(o, "failed_at")), first,
		                        EPS);
		if (executions > 1)
			ck_assert_double_eq_tol(json_real_value(json_object_get(o, "retried_at")),
			                        now, EPS);
		else
			ck_assert_ptr_null(json_object_get(o, "retried_at"));
		ck_assert_str_eq(json_string_value(json_object_get(o, "jid")),
		                 "ef7261af163d3cfec25c3f66");
		json_decref(o);
		free(payload);
		payload = next;
		if (out == JOB_OUT_DEAD)
			break;
		ck_assert_int_eq(out, JOB_OUT_RETRY);
		ck_assert_int_lt(executions, 27);
		now = score;
	}
	ck_assert_int_eq(executions, 26);
	free(payload);
}
END_TEST

/* A payload is bytes: one with a NUL is invalid even when the text before
 * the NUL is a whole job, and j->raw keeps every byte for the dead set. */
START_TEST(test_parse_nul_byte)
{
	static const char raw[] = "{\"class\":\"A\",\"args\":[]}\0tail";
	struct job j;
	ck_assert_int_eq(job_parse(&j, raw, sizeof(raw) - 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "NUL byte at offset 23") != NULL, "%s", err);
	ck_assert_int_eq(memcmp(j.raw, raw, sizeof(raw)), 0);
	ck_assert_ptr_null(j.job_class);
	job_free(&j);
	/* the length is what counts, not a terminating NUL */
	ck_assert_int_eq(job_parse(&j, raw, 7, err, sizeof(err)), -1);
	ck_assert_str_eq(j.raw, "{\"class");
	job_free(&j);
	ck_assert_int_eq(job_parse(&j, raw, 23, err, sizeof(err)), 0);
	ck_assert_str_eq(j.job_class, "A");
	job_free(&j);
}
END_TEST

/* forq carries a running job's jid whole, or not at all. */
START_TEST(test_check_jid)
{
	struct job j;
	char *raw = xasprintf("{\"class\":\"A\",\"args\":[],\"jid\":\"%s\"}", J127);
	parse_ok(&j, raw);
	ck_assert_int_eq(job_check(&j, err, sizeof(err)), 0);
	job_free(&j);
	free(raw);
	raw = xasprintf("{\"class\":\"A\",\"args\":[],\"jid\":\"%s\"}", J128);
	parse_ok(&j, raw);
	ck_assert_int_eq(job_check(&j, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "jid is 128 bytes, longer than the 127") != NULL, "%s", err);
	job_free(&j);
	free(raw);
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"jid\":\"ab\\u0000cd\"}");
	ck_assert_int_eq(job_check(&j, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "NUL") != NULL, "%s", err);
	job_free(&j);
	parse_ok(&j, "{\"class\":\"A\",\"args\":[]}"); /* no jid: nothing to carry */
	ck_assert_int_eq(job_check(&j, err, sizeof(err)), 0);
	job_free(&j);
	parse_ok(&j, "{\"class\":\"A\",\"args\":[],\"jid\":12}");
	ck_assert_int_eq(job_check(&j, err, sizeof(err)), 0);
	job_free(&j);
}
END_TEST

START_TEST(test_failure_of_unparsed_payload_keeps_raw)
{
	struct job j;
	ck_assert_int_eq(parse(&j, "{oops", err, sizeof(err)), -1);
	struct job_failure f = failure("E", "m", NOW, 0.0);
	enum job_outcome out;
	double score = 0;
	char *p = job_failure_payload(&j, &f, &out, &score);
	ck_assert_int_eq(out, JOB_OUT_DEAD);
	ck_assert_str_eq(p, "{oops");
	ck_assert_double_eq(score, NOW);
	free(p);
	job_free(&j);
}
END_TEST

/* ---- retry delay ---- */

START_TEST(test_retry_delay_table)
{
	static const double base[] = {15,     16,     31,     96,    271,    640,    1311,
	                              2416,   4111,   6576,   10015, 14656,  20751,  28576,
	                              38431,  50640,  65551,  83536, 104991, 130336, 160015,
	                              194496, 234271, 279856, 331791};
	for (int c = 0; c < 25; c++)
		ck_assert_double_eq(job_retry_delay(c, 0.0), base[c]);
	/* rand(10) = floor(rnd * 10), times count + 1 */
	ck_assert_double_eq(job_retry_delay(0, 0.0), 15);
	ck_assert_double_eq(job_retry_delay(0, 0.0999), 15);
	ck_assert_double_eq(job_retry_delay(0, 0.1), 16);
	ck_assert_double_eq(job_retry_delay(0, 0.999999), 24);
	ck_assert_double_eq(job_retry_delay(1, 0.0), 16);
	ck_assert_double_eq(job_retry_delay(1, 0.999999), 34);
	ck_assert_double_eq(job_retry_delay(2, 0.5), 31 + 5 * 3);
	ck_assert_double_eq(job_retry_delay(24, 0.999999), 331791 + 9 * 25);
}
END_TEST

START_TEST(test_retry_delay_bounds)
{
	for (int c = 0; c <= 25; c++) {
		double lo = (double)c * c * c * c + 15, hi = lo + 9.0 * (c + 1);
		bool seen_lo = false, seen_hi = false;
		for (int k = 0; k < 1000; k++) {
			double d = job_retry_delay(c, k / 1000.0);
			ck_assert_msg(d >= lo && d <= hi, "count %d: %f outside [%f, %f]", c, d, lo,
			              hi);
			ck_assert_double_eq(d, floor(d));
			seen_lo |= d == lo;
			seen_hi |= d == hi;
		}
		ck_assert(seen_lo && seen_hi);
	}
	/* out-of-range inputs stay finite and in range */
	ck_assert_double_eq(job_retry_delay(-5, 0.0), 15);
	ck_assert_double_eq(job_retry_delay(0, 1.0), 24);
	ck_assert_double_eq(job_retry_delay(0, 7.0), 24);
	ck_assert_double_eq(job_retry_delay(0, -0.5), 15);
	ck_assert_double_eq(job_retry_delay(0, NAN), 15);
	double big = job_retry_delay(2147483647, 0.999);
	ck_assert(isfinite(big) && big > 1e15);
	ck_assert(big >= job_retry_delay(10000, 0.999));
}
END_TEST

/* ---- error_message encoding ---- */

/* The error_message a failure with msg writes, decoded; caller frees. */
static char *written_message(const char *msg)
{
	struct job_failure f = failure("E", msg, NOW, 0.0);
	enum job_outcome out;
	double score;
	char *p = fail_once("{\"class\":\"X\",\"args\":[]}", &f, &out, &score);
	json_t *o = load(p, true);
	char *m = strdup(json_string_value(json_object_get(o, "error_message")));
	json_decref(o);
	free(p);
	return m;
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
	size_t n = strlen(unit);
	char *s = malloc(n * times + strlen(tail) + 1);
	for (size_t i = 0; i < times; i++)
		memcpy(s + i * n, unit, n);
	strcpy(s + n * times, tail);
	return s;
}

START_TEST(test_error_message_cut_to_characters)
{
	char *in = repeat("a", 10005, ""), *m = written_message(in);
	ck_assert_uint_eq(strlen(m), JOB_ERROR_MESSAGE_MAX);
	free(in);
	free(m);
	/* 10001 two-byte characters: 10000 characters = 20000 bytes */
	in = repeat("\xc3\xa9", 10001, "");
	m = written_message(in);
	ck_assert_uint_eq(strlen(m), 2 * JOB_ERROR_MESSAGE_MAX);
	in[2 * JOB_ERROR_MESSAGE_MAX] = '\0';
	ck_assert_str_eq(m, in);
	free(in);
	free(m);
	/* a 3-byte and a 4-byte character at the limit are kept whole */
	in = repeat("a", 9999,
	            "\xe2\x82\xac"
	            "zz");
	m = written_message(in);
	ck_assert_uint_eq(strlen(m), 9999 + 3);
	ck_assert_str_eq(m + 9999, "\xe2\x82\xac");
	free(in);
	free(m);
	in = repeat("a", 9999,
	            "\xf0\x9f\x98\x80"
	            "b");
	m = written_message(in);
	ck_assert_str_eq(m + 9999, "\xf0\x9f\x98\x80");
	free(in);
	free(m);
	/* exactly at the limit nothing is cut */
	in = repeat("\xf0\x9f\x98\x80", 10000, "");
	m = written_message(in);
	ck_assert_str_eq(m, in);
	free(in);
	free(m);
}
END_TEST

START_TEST(test_error_message_scrubbed_and_escaped)
{
	char *m = written_message("ok\xffok\xc3");
	ck_assert_str_eq(m, "ok\xef\xbf\xbdok\xef\xbf\xbd");
	free(m);
	m = written_message("\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82");
	ck_assert_str_eq(
	    m, "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
	       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd");
	free(m);
	/* Ruby-like escaping: quotes, backslash, control characters; '/' and
	 * UTF-8 raw */
	struct job_failure f = failure("Foo::Bar", "a\"b\\c/d\n\t\x01\xc3\xa9", NOW, 0.0);
	enum job_outcome out;
	double score;
	char *p = fail_once("{\"class\":\"X\",\"args\":[]}", &f, &out, &score);
	ck_assert_ptr_nonnull(strstr(p, "\"error_message\":\"a\\\"b\\\\c/"
	                                "d\\n\\t\\u0001\xc3\xa9\",\"error_class\":\"Foo::Bar\""));
	free(p);
}
END_TEST

/* ---- enqueued_at, time format, dead, peek ---- */

START_TEST(test_with_members)
{
	const char *kv[] = {"cron", "\"tick\"", "cron_tick", "17", "class", "\"B\""};
	char *p = job_with_members("{\"class\":\"A\",\"args\":[12345678901234567890]}", kv, 3);
	ck_assert_str_eq(p, "{\"class\":\"B\",\"args\":[12345678901234567890],\"cron\":\"tick\","
			    "\"cron_tick\":17}");
	json_decref(load(p, false));
	free(p);
	ck_assert_ptr_null(job_with_members("[1]", kv, 1));
	ck_assert_ptr_null(job_with_members("{}", kv, 0));
}
END_TEST

START_TEST(test_with_enqueued_at)
{
	char *p = job_with_enqueued_at(P64, 1795380999.25);
	ck_assert_str_eq(
	    p, "{\"retry\":true,\"queue\":\"default\",\"class\":\"OkWorker\",\"args\":[1,\"x\"],"
	       "\"jid\":\"ef7261af163d3cfec25c3f66\",\"created_at\":1795380180.9767904,"
	       "\"enqueued_at\":1795380999.250000}");
	free(p);
	/* a schedule entry has none: appended at the end */
	p = job_with_enqueued_at("{\"class\":\"A\",\"args\":[12345678901234567890],\"x\":1.10}",
	                         5.0);
	ck_assert_str_eq(p, "{\"class\":\"A\",\"args\":[12345678901234567890],\"x\":1.10,"
	                    "\"enqueued_at\":5.000000}");
	json_decref(load(p, false));
	free(p);
	p = job_with_enqueued_at(" { \"a\" : [ ] ,\"enqueued_at\" : 17 } \n", 6.5);
	ck_assert_str_eq(p, " { \"a\" : [ ] ,\"enqueued_at\" : 6.500000 } \n");
	free(p);
	p = job_with_enqueued_at("{}", 1.0);
	ck_assert_str_eq(p, "{\"enqueued_at\":1.000000}");
	free(p);
	p = job_with_enqueued_at("{ \n}", 1.0);
	ck_assert_str_eq(p, "{\"enqueued_at\":1.000000 \n}");
	json_decref(load(p, false));
	free(p);
	/* not an object: unchanged (the worker buries it with a reason) */
	static const char *const bad[] = {"[1]", "{\"a\":", "", "not json", "{\"a\":1}}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = job_with_enqueued_at(bad[i], 1.0);
		ck_assert_str_eq(p, bad[i]);
		ck_assert_ptr_ne(p, bad[i]);
		free(p);
	}
	p = job_with_enqueued_at(NULL, 1.0);
	ck_assert_str_eq(p, "");
	free(p);
}
END_TEST

START_TEST(test_format_time)
{
	char buf[64];
	job_format_time(buf, sizeof(buf), 1795380437.1660569);
	ck_assert_str_eq(buf, "1795380437.166057");
	job_format_time(buf, sizeof(buf), 1795380437.0);
	ck_assert_str_eq(buf, "1795380437.000000");
	job_format_time(buf, sizeof(buf), 0.0);
	ck_assert_str_eq(buf, "0.000000");
	job_format_time(buf, sizeof(buf), 1.5e-5);
	ck_assert_str_eq(buf, "0.000015");
	job_format_time(buf, sizeof(buf), NAN);
	ck_assert_str_eq(buf, "0.000000");
	static const double odd[] = {INFINITY, -INFINITY, 1e300, -1e300};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		job_format_time(buf, sizeof(buf), odd[i]);
		ck_assert_ptr_nonnull(strchr(buf, '.'));
		ck_assert_ptr_null(strpbrk(buf, "naif"));
		ck_assert_uint_lt(strlen(buf), 32);
	}
}
END_TEST

START_TEST(test_dead_raw_and_peek_queue)
{
	const char *raw = "not json {";
	char *d = job_dead_raw(raw);
	ck_assert_str_eq(d, raw);
	ck_assert_ptr_ne(d, raw);
	free(d);
	char *q = job_peek_queue(P64);
	ck_assert_str_eq(q, "default");
	free(q);
	q = job_peek_queue("{\"queue\":\"a\\u00e9\",\"args\":[12345678901234567890]}");
	ck_assert_str_eq(q, "a\xc3\xa9");
	free(q);
	ck_assert_ptr_null(job_peek_queue("{\"class\":\"A\"}"));
	ck_assert_ptr_null(job_peek_queue("{\"queue\":7}"));
	ck_assert_ptr_null(job_peek_queue("{\"queue\":\"a\""));
	ck_assert_ptr_null(job_peek_queue("[\"queue\"]"));
	ck_assert_ptr_null(job_peek_queue(""));
	ck_assert_ptr_null(job_peek_queue(NULL));
}
END_TEST

START_TEST(test_json_helpers)
{
	char *q = job_json_quote("a\"b\\c\n\xc3\xa9\xff");
	ck_assert_str_eq(q, "\"a\\\"b\\\\c\\n\xc3\xa9\xef\xbf\xbd\"");
	free(q);
	q = job_json_quote(NULL);
	ck_assert_str_eq(q, "\"\"");
	free(q);
	const char *info = "{\"hostname\":\"vm\",\"started_at\":1795380188.3234088,\"pid\":9455,"
	                   "\"big\":[12345678901234567890],\"n\":null}";
	char *s = job_json_get_string(info, "hostname");
	ck_assert_str_eq(s, "vm");
	free(s);
	ck_assert_ptr_null(job_json_get_string(info, "pid"));
	ck_assert_ptr_null(job_json_get_string(info, "missing"));
	ck_assert_ptr_null(job_json_get_string("[\"hostname\"]", "hostname"));
	ck_assert_ptr_null(job_json_get_string("{", "hostname"));
	ck_assert_ptr_null(job_json_get_string(NULL, "hostname"));
	double d = -1;
	ck_assert_int_eq(job_json_get_number(info, "started_at", &d), 0);
	ck_assert_double_eq_tol(d, 1795380188.3234088, EPS);
	ck_assert_int_eq(job_json_get_number(info, "pid", &d), 0);
	ck_assert_double_eq(d, 9455);
	d = -1;
	ck_assert_int_eq(job_json_get_number(info, "hostname", &d), -1);
	ck_assert_int_eq(job_json_get_number(info, "n", &d), -1);
	ck_assert_int_eq(job_json_get_number("nope", "pid", &d), -1);
	ck_assert_double_eq(d, -1);
}
END_TEST

/* ---- job_build ---- */

#define HEX "ef7261af163d3cfec25c3f66"

START_TEST(test_build_key_order)
{
	char *p = job_build("OkWorker", "[1,\"x\"]", "default", "true", NULL, HEX,
	                    1795380180.9767904, false, err, sizeof(err));
	ck_assert_str_eq(
	    p, "{\"retry\":true,\"queue\":\"default\",\"class\":\"OkWorker\",\"args\":[1,\"x\"],"
	       "\"jid\":\"" HEX "\",\"created_at\":1795380180.976790,"
	       "\"enqueued_at\":1795380180.976790}");
	json_t *o = load(p, true);
	ck_assert(json_is_real(json_object_get(o, "created_at")));
	ck_assert(json_is_real(json_object_get(o, "enqueued_at")));
	json_decref(o);
	/* round trip through the parser */
	struct job j;
	parse_ok(&j, p);
	ck_assert_str_eq(j.job_class, "OkWorker");
	ck_assert_str_eq(j.jid, HEX);
	ck_assert_str_eq(j.args_json, "[1,\"x\"]");
	ck_assert_double_eq_tol(j.enqueued_at, 1795380180.97679, EPS);
	job_free(&j);
	free(p);
}
END_TEST

START_TEST(test_build_options)
{
	/* scheduled: no enqueued_at; retry NULL: no retry key; explicit jid */
	char *p = job_build("A", "[]", "low", NULL, "0123456789abcdef01234567", "zz", 10.5, true,
	                    err, sizeof(err));
	ck_assert_str_eq(p, "{\"queue\":\"low\",\"class\":\"A\",\"args\":[],"
	                    "\"jid\":\"0123456789abcdef01234567\",\"created_at\":10.500000}");
	free(p);
	p = job_build("A", NULL, NULL, "false", NULL, HEX, 1.0, false, err, sizeof(err));
	ck_assert_str_eq(p,
	                 "{\"retry\":false,\"queue\":\"default\",\"class\":\"A\",\"args\":[],"
	                 "\"jid\":\"" HEX "\",\"created_at\":1.000000,\"enqueued_at\":1.000000}");
	free(p);
	p = job_build("A", " [ 12345678901234567890 , \"a b\" ]\n", "q", "3", NULL, HEX, 1.0, true,
	              err, sizeof(err));
	ck_assert_str_eq(
	    p, "{\"retry\":3,\"queue\":\"q\",\"class\":\"A\",\"args\":[12345678901234567890,"
	       "\"a b\"],\"jid\":\"" HEX "\",\"created_at\":1.000000}");
	free(p);
	/* strings are escaped by jansson */
	p = job_build("Name\"Space::Job", "[]", "q\\1", "0", NULL, HEX, 1.0, true, err,
	              sizeof(err));
	json_t *o = load(p, true);
	ck_assert_str_eq(json_string_value(json_object_get(o, "class")), "Name\"Space::Job");
	ck_assert_str_eq(json_string_value(json_object_get(o, "queue")), "q\\1");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "retry")), 0);
	json_decref(o);
	free(p);
}
END_TEST

START_TEST(test_build_validation)
{
	static const struct {
		const char *cls, *args, *queue, *retry, *jid, *hex, *needle;
	} cases[] = {
	    {"", "[]", "q", NULL, NULL, HEX, "class"},
	    {NULL, "[]", "q", NULL, NULL, HEX, "class"},
	    {"A\xff", "[]", "q", NULL, NULL, HEX, "class"},
	    {"A", "{}", "q", NULL, NULL, HEX, "args must be a JSON array"},
	    {"A", "5", "q", NULL, NULL, HEX, "args is not valid JSON"},
	    {"A", "[1,", "q", NULL, NULL, HEX, "args is not valid JSON"},
	    {"A", "", "q", NULL, NULL, HEX, "args is not valid JSON"},
	    {"A", "[] []", "q", NULL, NULL, HEX, "args is not valid JSON"},
	    {"A", "[]", "", NULL, NULL, HEX, "queue"},
	    {"A", "[]", "q", "yes", NULL, HEX, "retry"},
	    {"A", "[]", "q", "-1", NULL, HEX, "retry"},
	    {"A", "[]", "q", "1.5", NULL, HEX, "retry"},
	    {"A", "[]", "q", "", NULL, HEX, "retry"},
	    {"A", "[]", "q", NULL, NULL, "EF7261AF163D3CFEC25C3F66", "jid"},
	    {"A", "[]", "q", NULL, NULL, "ef7261af163d3cfec25c3f6", "jid"},
	    {"A", "[]", "q", NULL, NULL, "ef7261af163d3cfec25c3f666", "jid"},
	    {"A", "[]", "q", NULL, NULL, NULL, "jid"},
	    {"A", "[]", "q", NULL, "", HEX, "jid"},
	    {"A", "[]", "q", NULL, "bad\xff", HEX, "jid"},
	    {"A", "[]", "q", NULL, J128, HEX, "jid must be at most 127 bytes"},
	};
	/* a jid the caller gives only needs to be a string, as in Sidekiq */
	char *given = job_build("A", "[]", "q", NULL, "my-job", HEX, 1.0, false, err, sizeof(err));
	ck_assert_ptr_nonnull(given);
	ck_assert_ptr_nonnull(strstr(given, "\"jid\":\"my-job\""));
	free(given);
	/* one of JOB_JID_MAX bytes is the longest, and it is escaped as JSON */
	given = job_build("A", "[]", "q", NULL, J127, HEX, 1.0, false, err, sizeof(err));
	ck_assert_ptr_nonnull(given);
	free(given);
	given = job_build("A", "[]", "q", NULL, "a\"b\\c", HEX, 1.0, false, err, sizeof(err));
	ck_assert_ptr_nonnull(strstr(given, "\"jid\":\"a\\\"b\\\\c\""));
	struct job j;
	parse_ok(&j, given);
	ck_assert_str_eq(j.jid, "a\"b\\c");
	job_free(&j);
	free(given);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		char *p = job_build(cases[i].cls, cases[i].args, cases[i].queue, cases[i].retry,
		                    cases[i].jid, cases[i].hex, 1.0, false, err, sizeof(err));
		ck_assert_msg(p == NULL, "case %zu accepted: %s", i, p);
		ck_assert_msg(strstr(err, cases[i].needle) != NULL, "case %zu: '%s'", i, err);
	}
}
END_TEST

/* ---- work entry ---- */

START_TEST(test_work_entry)
{
	const char *raw = "{\"retry\":true,\"queue\":\"low\",\"args\":[12],\"class\":\"OkWorker\","
	                  "\"jid\":\"5764f6ebc144942f4757e62c\",\"created_at\":1795380187.9964678,"
	                  "\"enqueued_at\":1795380187.9964979}";
	char *w = job_work_entry("low", raw, 1795380188.99);
	/* research §8.4, observed live */
	ck_assert_str_eq(
	    w, "{\"queue\":\"low\",\"payload\":\"{\\\"retry\\\":true,\\\"queue\\\":\\\"low\\\","
	       "\\\"args\\\":[12],\\\"class\\\":\\\"OkWorker\\\",\\\"jid\\\":"
	       "\\\"5764f6ebc144942f4757e62c\\\",\\\"created_at\\\":1795380187.9964678,"
	       "\\\"enqueued_at\\\":1795380187.9964979}\",\"run_at\":1795380188}");
	json_t *o = load(w, true);
	ck_assert_str_eq(json_string_value(json_object_get(o, "payload")), raw);
	ck_assert(json_is_integer(json_object_get(o, "run_at")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "run_at")), 1795380188);
	json_decref(o);
	free(w);
	/* a malformed payload with invalid UTF-8 still gives valid JSON */
	w = job_work_entry("q", "{\xff\n", NAN);
	o = load(w, true);
	ck_assert_str_eq(json_string_value(json_object_get(o, "payload")), "{\xef\xbf\xbd\n");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "run_at")), 0);
	json_decref(o);
	free(w);
}
END_TEST

START_TEST(test_lock_string_canonical)
{
	char *a = job_lock_string("C", "q", "[{\"b\":1,\"a\":[2, {\"z\":0,\"y\":\"x\"}]}, 3]", NULL, 0);
	char *b = job_lock_string("C", "q", "[ {\"a\":[2,{\"y\":\"x\",\"z\":0}], \"b\":1},3 ]", NULL, 0);
	ck_assert_str_eq(a, "C\nq\n[{\"a\":[2,{\"y\":\"x\",\"z\":0}],\"b\":1},3]");
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	a = job_lock_string("C", "default", "[]", NULL, 0);
	ck_assert_str_eq(a, "C\ndefault\n[]");
	free(a);
	/* integers stay integers; beyond 64 bits they are still accepted */
	a = job_lock_string("C", "q", "[1, 1.5, \"\\u00e9\", null, true]", NULL, 0);
	ck_assert_str_eq(a, "C\nq\n[1,1.5,\"\xc3\xa9\",null,true]");
	free(a);
	a = job_lock_string("C", "q", "[123456789012345678901234567890]", NULL, 0);
	ck_assert_ptr_nonnull(a);
	free(a);
	/* another queue or class is another lock */
	a = job_lock_string("C", "q1", "[1]", NULL, 0);
	b = job_lock_string("C", "q2", "[1]", NULL, 0);
	ck_assert_str_ne(a, b);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_lock_string_positions)
{
	int pos[] = {2, 0};
	char *a = job_lock_string("C", "q", "[\"a\", \"ignored\", {\"k\":1}]", pos, 2);
	char *b = job_lock_string("C", "q", "[\"a\", \"other\", {\"k\":1}, 99]", pos, 2);
	ck_assert_str_eq(a, "C\nq\n[{\"k\":1},\"a\"]");
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	int far[] = {0, 5};
	a = job_lock_string("C", "q", "[7]", far, 2);
	ck_assert_str_eq(a, "C\nq\n[7,null]");
	free(a);
}
END_TEST

START_TEST(test_lock_string_not_an_array)
{
	ck_assert_ptr_null(job_lock_string("C", "q", "{\"a\":1}", NULL, 0));
	ck_assert_ptr_null(job_lock_string("C", "q", "\"x\"", NULL, 0));
	ck_assert_ptr_null(job_lock_string("C", "q", "[1,", NULL, 0));
	ck_assert_ptr_null(job_lock_string("C", "q", NULL, NULL, 0));
}
END_TEST

START_TEST(test_parse_forq_unique)
{
	struct job j;
	ck_assert_int_eq(parse(&j, "{\"class\":\"C\",\"args\":[],\"jid\":\"j\","
				       "\"forq_unique\":\"until_executed\",\"forq_unique_ttl\":90}",
				   err, sizeof(err)), 0);
	ck_assert_str_eq(j.unique, "until_executed");
	ck_assert(j.unique_ttl == 90);
	job_free(&j);
	ck_assert_int_eq(parse(&j, "{\"class\":\"C\",\"args\":[]}", err, sizeof(err)), 0);
	ck_assert_ptr_null(j.unique);
	ck_assert(j.unique_ttl == 0);
	job_free(&j);
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("job");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_sidekiq_payload);
	tcase_add_test(tc, test_parse_times_seconds_and_ms);
	tcase_add_test(tc, test_parse_retry_kinds);
	tcase_add_test(tc, test_parse_retry_state);
	tcase_add_test(tc, test_parse_big_numbers_and_compact_args);
	tcase_add_test(tc, test_parse_escaped_and_duplicate_keys);
	tcase_add_test(tc, test_parse_malformed);
	tcase_add_test(tc, test_parse_error_has_jansson_position);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_add_test(tc, test_first_failure);
	tcase_add_test(tc, test_second_failure_updates_in_place);
	tcase_add_test(tc, test_forced_outcome_and_backtrace);
	tcase_add_test(tc, test_splice_preserves_every_other_byte);
	tcase_add_test(tc, test_splice_escaped_and_duplicate_keys);
	tcase_add_test(tc, test_failure_queue_choice);
	tcase_add_test(tc, test_outcomes);
	tcase_add_test(tc, test_outcome_retry_for);
	tcase_add_test(tc, test_retry_progression);
	tcase_add_test(tc, test_failure_of_unparsed_payload_keeps_raw);
	tcase_add_test(tc, test_retry_delay_table);
	tcase_add_test(tc, test_retry_delay_bounds);
	tcase_add_test(tc, test_error_message_cut_to_characters);
	tcase_add_test(tc, test_error_message_scrubbed_and_escaped);
	suite_add_tcase(s, tc);

	tc = tcase_create("rewrite");
	tcase_add_test(tc, test_with_enqueued_at);
	tcase_add_test(tc, test_with_members);
	tcase_add_test(tc, test_format_time);
	tcase_add_test(tc, test_dead_raw_and_peek_queue);
	tcase_add_test(tc, test_json_helpers);
	tcase_add_test(tc, test_build_key_order);
	tcase_add_test(tc, test_build_options);
	tcase_add_test(tc, test_build_validation);
	tcase_add_test(tc, test_parse_nul_byte);
	tcase_add_test(tc, test_check_jid);
	tcase_add_test(tc, test_work_entry);
	suite_add_tcase(s, tc);

	tc = tcase_create("unique");
	tcase_add_test(tc, test_lock_string_canonical);
	tcase_add_test(tc, test_lock_string_positions);
	tcase_add_test(tc, test_lock_string_not_an_array);
	tcase_add_test(tc, test_parse_forq_unique);
	suite_add_tcase(s, tc);
	return s;
}
