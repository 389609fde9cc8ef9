/* Unit tests for log: level and format names, level filtering, and the exact
 * shape of emitted lines, captured by pointing fd 1 at a temporary file; JSON
 * lines are checked by parsing them back with jansson. */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suite.h"
#include "log.h"

static char out[8192];
static int saved_stdout = -1;
static int capture_fd = -1;

static void setup(void)
{
	log_setup(LOG_INFO, LOG_FORMAT_TEXT);
	log_set_role("forq", -1);
	out[0] = '\0';
}

/* Puts stdout back if a failed assertion left it captured (matters in
 * CK_FORK=no runs, where the next test shares this process). */
static void teardown(void)
{
	if (saved_stdout >= 0) {
		dup2(saved_stdout, STDOUT_FILENO);
		close(saved_stdout);
		close(capture_fd);
		capture_fd = saved_stdout = -1;
	}
}

/* Points fd 1 at a fresh temporary file until capture_end. */
static void capture_begin(void)
{
	char path[] = "/tmp/forq-test-log-XXXXXX";
	capture_fd = mkstemp(path);
	ck_assert_int_ge(capture_fd, 0);
	unlink(path);
	saved_stdout = dup(STDOUT_FILENO);
	ck_assert_int_ge(saved_stdout, 0);
	ck_assert_int_eq(dup2(capture_fd, STDOUT_FILENO), STDOUT_FILENO);
}

/* Restores fd 1 and returns everything written meanwhile (in out). */
static const char *capture_end(void)
{
	ck_assert_int_eq(dup2(saved_stdout, STDOUT_FILENO), STDOUT_FILENO);
	close(saved_stdout);
	ssize_t n = pread(capture_fd, out, sizeof(out) - 1, 0);
	ck_assert_int_ge(n, 0);
	out[n] = '\0';
	close(capture_fd);
	capture_fd = saved_stdout = -1;
	return out;
}

/* Exactly one line, ending in its only newline. */
static void assert_one_line(const char *s)
{
	size_t len = strlen(s);
	ck_assert_uint_gt(len, 0);
	ck_assert_msg(s[len - 1] == '\n', "no final newline in '%.200s'", s);
	ck_assert_msg(strchr(s, '\n') == s + len - 1, "more than one line in '%.200s'", s);
}

static void assert_has(const char *line, const char *needle)
{
	ck_assert_msg(strstr(line, needle) != NULL, "'%s' not in line: %.300s", needle, line);
}

/* Parses a captured JSON line; the caller json_decref()s the result. */
static json_t *parse_json(const char *line)
{
	json_error_t jerr;
	assert_one_line(line);
	json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	ck_assert_msg(j != NULL, "bad JSON (%s at %d) in %zu bytes: %.200s...", jerr.text,
	              jerr.position, strlen(line), line);
	ck_assert(json_is_object(j));
	return j;
}

static const char *json_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	ck_assert_msg(json_is_string(v), "%s is not a JSON string", key);
	return json_string_value(v);
}

static json_int_t json_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	ck_assert_msg(json_is_integer(v), "%s is not a JSON integer", key);
	return json_integer_value(v);
}

START_TEST(test_level_parse)
{
	enum log_level l = LOG_ERROR;
	ck_assert_int_eq(log_level_parse("debug", &l), 0);
	ck_assert_int_eq(l, LOG_DEBUG);
	ck_assert_int_eq(log_level_parse("info", &l), 0);
	ck_assert_int_eq(l, LOG_INFO);
	ck_assert_int_eq(log_level_parse("warn", &l), 0);
	ck_assert_int_eq(l, LOG_WARN);
	ck_assert_int_eq(log_level_parse("warning", &l), 0);
	ck_assert_int_eq(l, LOG_WARN);
	ck_assert_int_eq(log_level_parse("error", &l), 0);
	ck_assert_int_eq(l, LOG_ERROR);
	ck_assert_int_eq(log_level_parse("DEBUG", &l), 0);
	ck_assert_int_eq(l, LOG_DEBUG);
}
END_TEST

START_TEST(test_level_parse_rejects)
{
	static const char *const bad[] = {"", "verbose", "inf", "infos", "fatal", " info", "2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum log_level l = LOG_ERROR;
		ck_assert_msg(log_level_parse(bad[i], &l) == -1, "accepted '%s'", bad[i]);
		ck_assert_int_eq(l, LOG_ERROR); /* untouched on failure */
	}
}
END_TEST

START_TEST(test_level_names)
{
	ck_assert_str_eq(log_level_name(LOG_DEBUG), "debug");
	ck_assert_str_eq(log_level_name(LOG_INFO), "info");
	ck_assert_str_eq(log_level_name(LOG_WARN), "warn");
	ck_assert_str_eq(log_level_name(LOG_ERROR), "error");
}
END_TEST

START_TEST(test_format_parse)
{
	enum log_format f = LOG_FORMAT_JSON;
	ck_assert_int_eq(log_format_parse("text", &f), 0);
	ck_assert_int_eq(f, LOG_FORMAT_TEXT);
	ck_assert_int_eq(log_format_parse("json", &f), 0);
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
	ck_assert_int_eq(log_format_parse("JSON", &f), 0);
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
	ck_assert_int_eq(log_format_parse("xml", &f), -1);
	ck_assert_int_eq(log_format_parse("", &f), -1);
	ck_assert_int_eq(log_format_parse("jsonl", &f), -1);
	ck_assert_int_eq(f, LOG_FORMAT_JSON);
}
END_TEST

START_TEST(test_level_filter)
{
	log_setup(LOG_WARN, LOG_FORMAT_TEXT);
	ck_assert(!log_enabled(LOG_DEBUG));
	ck_assert(!log_enabled(LOG_INFO));
	ck_assert(log_enabled(LOG_WARN));
	ck_assert(log_enabled(LOG_ERROR));
	capture_begin();
	log_debug("hidden debug");
	log_info("hidden info");
	log_warn("shown warn");
	log_error("shown error");
	const char *s = capture_end();
	ck_assert_ptr_null(strstr(s, "hidden"));
	assert_has(s, "level=warn");
	assert_has(s, "msg=\"shown warn\"");
	assert_has(s, "level=error");
	ck_assert_ptr_eq(strchr(strchr(s, '\n') + 1, '\n'), s + strlen(s) - 1); /* two lines */
}
END_TEST

START_TEST(test_text_line)
{
	log_set_role("worker", 3);
	capture_begin();
	log_info("hello", LF_INT("n", 42), LF_INT("neg", -7), LF_STR("path", "a b"),
	         LF_STR("word", "plain"), LF_BOOL("ok", 1), LF_DBL("ratio", 1.5));
	const char *s = capture_end();
	assert_one_line(s);
	ck_assert_msg(!strncmp(s, "ts=", 3), "line does not start with ts=: %s", s);
	assert_has(s, " level=info ");
	assert_has(s, " role=worker ");
	assert_has(s, " slot=3 ");
	char pid[32];
	snprintf(pid, sizeof(pid), " pid=%ld ", (long)getpid());
	assert_has(s, pid);
	assert_has(s, " msg=\"hello\"");
	assert_has(s, " n=42");
	assert_has(s, " neg=-7");
	assert_has(s, " path=\"a b\"");
	assert_has(s, " word=plain");
	assert_has(s, " ok=true");
	assert_has(s, " ratio=1.500");
	/* fields keep their order, after the message */
	ck_assert(strstr(s, "msg=") < strstr(s, " n=42"));
	ck_assert(strstr(s, " n=42") < strstr(s, " path="));
	ck_assert(strstr(s, " path=") < strstr(s, " ratio="));
}
END_TEST

START_TEST(test_text_without_slot)
{
	log_set_role("master", -1);
	capture_begin();
	log_warn("no slot here");
	const char *s = capture_end();
	assert_one_line(s);
	assert_has(s, " role=master ");
	ck_assert_ptr_null(strstr(s, "slot="));
}
END_TEST

START_TEST(test_slot_zero_is_shown)
{
	log_set_role("worker", 0);
	capture_begin();
	log_info("first slot");
	const char *s = capture_end();
	assert_one_line(s);
	assert_has(s, " slot=0 ");
}
END_TEST

START_TEST(test_text_quoting)
{
	capture_begin();
	log_info("say \"hi\"\nbye", LF_STR("empty", ""), LF_STR("eq", "a=b"),
	         LF_STR("quote", "x\"y"), LF_STR("nl", "l1\nl2"), LF_STR("null", NULL),
	         LF_DBL("inf", INFINITY), LF_BOOL("no", 0));
	const char *s = capture_end();
	assert_one_line(s); /* a newline in a value never splits the line */
	assert_has(s, " msg=\"say \\\"hi\\\"\\nbye\"");
	assert_has(s, " empty=\"\"");
	assert_has(s, " eq=\"a=b\"");
	assert_has(s, " quote=\"x\\\"y\"");
	assert_has(s, " nl=\"l1\\nl2\"");
	assert_has(s, " null=\"\"");
	assert_has(s, " inf=-");
	assert_has(s, " no=false");
}
END_TEST

START_TEST(test_json_line)
{
	log_setup(LOG_INFO, LOG_FORMAT_JSON);
	log_set_role("worker", 3);
	capture_begin();
	log_warn("hello", LF_INT("n", 42), LF_INT("big", 1LL << 40), LF_STR("path", "a b"),
	         LF_BOOL("ok", 1), LF_BOOL("bad", 0), LF_DBL("ratio", 1.5), LF_DBL("nan", NAN));
	json_t *j = parse_json(capture_end());
	ck_assert_str_eq(json_str(j, "msg"), "hello");
	ck_assert_str_eq(json_str(j, "level"), "warn");
	ck_assert_str_eq(json_str(j, "role"), "worker");
	ck_assert(json_is_string(json_object_get(j, "ts")));
	ck_assert_int_eq(json_int(j, "slot"), 3);
	ck_assert_int_eq(json_int(j, "pid"), getpid());
	ck_assert_int_eq(json_int(j, "n"), 42);
	ck_assert_int_eq(json_int(j, "big"), 1LL << 40);
	ck_assert_str_eq(json_str(j, "path"), "a b");
	ck_assert(json_is_true(json_object_get(j, "ok")));
	ck_assert(json_is_false(json_object_get(j, "bad")));
	json_t *ratio = json_object_get(j, "ratio");
	ck_assert(json_is_real(ratio));
	ck_assert_double_eq_tol(json_real_value(ratio), 1.5, 1e-9);
	ck_assert(json_is_null(json_object_get(j, "nan")));
	ck_assert_uint_eq(json_object_size(j), 13);
	json_decref(j);
}
END_TEST

START_TEST(test_json_without_slot)
{
	log_setup(LOG_DEBUG, LOG_FORMAT_JSON);
	log_set_role("master", -1);
	capture_begin();
	log_debug("quiet");
	json_t *j = parse_json(capture_end());
	ck_assert_str_eq(json_str(j, "level"), "debug");
	ck_assert_str_eq(json_str(j, "role"), "master");
	ck_assert_ptr_null(json_object_get(j, "slot"));
	json_decref(j);
}
END_TEST

START_TEST(test_json_string_round_trip)
{
	static const char tricky[] = "quote \" backslash \\ newline \n tab \t cr \r bell \a "
	                             "utf8 \xc3\xa9 end";
	log_setup(LOG_INFO, LOG_FORMAT_JSON);
	capture_begin();
	log_error(tricky, LF_STR("value", tricky), LF_STR("empty", ""));
	json_t *j = parse_json(capture_end());
	ck_assert_str_eq(json_str(j, "msg"), tricky);
	ck_assert_str_eq(json_str(j, "value"), tricky);
	ck_assert_str_eq(json_str(j, "empty"), "");
	json_decref(j);
}
END_TEST

START_TEST(test_json_long_line_stays_valid)
{
	/* Handler errors and job arguments can be longer than the line buffer;
	 * a line cut short must still be one JSON object, or log shippers drop
	 * it. */
	static char big[6000], quotes[3000];
	memset(big, 'x', sizeof(big) - 1);
	memset(quotes, '"', sizeof(quotes) - 1); /* each one doubles when escaped */
	log_setup(LOG_INFO, LOG_FORMAT_JSON);
	capture_begin();
	log_info(big, LF_INT("n", 1));
	json_t *j = parse_json(capture_end());
	ck_assert_str_eq(json_str(j, "level"), "info");
	json_str(j, "msg");
	json_decref(j);

	capture_begin();
	log_info("m", LF_STR("q", quotes));
	j = parse_json(capture_end());
	ck_assert_str_eq(json_str(j, "msg"), "m");
	json_decref(j);
}
END_TEST

START_TEST(test_emit_keeps_errno)
{
	capture_begin();
	errno = EAGAIN;
	log_info("errno survives", LF_INT("x", 1));
	int after = errno;
	capture_end();
	ck_assert_int_eq(after, EAGAIN);
}
END_TEST

START_TEST(test_errno_field)
{
	capture_begin();
	errno = ENOENT;
	log_warn("open failed", LF_ERRNO());
	const char *s = capture_end();
	assert_one_line(s);
	assert_has(s, " error=\"No such file or directory\"");
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("names");
	tcase_add_test(tc, test_level_parse);
	tcase_add_test(tc, test_level_parse_rejects);
	tcase_add_test(tc, test_level_names);
	tcase_add_test(tc, test_format_parse);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_level_filter);
	tcase_add_test(tc, test_text_line);
	tcase_add_test(tc, test_text_without_slot);
	tcase_add_test(tc, test_slot_zero_is_shown);
	tcase_add_test(tc, test_text_quoting);
	tcase_add_test(tc, test_emit_keeps_errno);
	tcase_add_test(tc, test_errno_field);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_line);
	tcase_add_test(tc, test_json_without_slot);
	tcase_add_test(tc, test_json_string_round_trip);
	tcase_add_test(tc, test_json_long_line_stays_valid);
	suite_add_tcase(s, tc);
	return s;
}
