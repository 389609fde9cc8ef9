/* Unit tests for cronexpr: parsing and its errors, calendar corners, and
 * the DST rules of cronexpr.h. Expected instants were worked out by hand
 * and with `TZ=... date -d`/zdump, written as ISO strings that a small
 * helper here converts; around transitions a brute-force oracle that
 * walks every minute in UTC checks the whole tick sequence too. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suite.h"
#include "cronexpr.h"
#include "tz.h"

#define H 3600

/* "YYYY-MM-DDTHH:MM:SSZ" to epoch seconds, independently of tz.c. */
static int64_t utc(const char *iso)
{
	static const int cum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
	int y, mo, d, h, mi, s;
	ck_assert_int_eq(sscanf(iso, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &s), 6);
	int64_t days = 0;
	for (int k = 1970; k < y; k++)
		days += (k % 4 == 0 && (k % 100 != 0 || k % 400 == 0)) ? 366 : 365;
	days += cum[mo - 1] + d - 1;
	if (mo > 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		days++;
	return days * 86400 + h * 3600 + mi * 60 + s;
}

static struct cronexpr *parse(const char *text)
{
	char err[256] = "";
	struct cronexpr *e = cronexpr_parse(text, err, sizeof(err));
	ck_assert_msg(e != NULL, "'%s': %s", text, err);
	return e;
}

static struct tz *zone(const char *name)
{
	char err[256] = "";
	struct tz *z = tz_load(name, err, sizeof(err));
	ck_assert_msg(z != NULL, "%s: %s", name, err);
	return z;
}

/* next() from `from` gives the ISO instants in order. */
static void assert_next_seq(const char *expr, const char *zname, const char *from,
			    const char *const *want, size_t n)
{
	struct cronexpr *e = parse(expr);
	struct tz *z = zone(zname);
	int64_t t = utc(from);
	for (size_t i = 0; i < n; i++) {
		int64_t got = cronexpr_next(e, z, t);
		ck_assert_msg(got == utc(want[i]), "'%s' in %s after %lld: got %lld, want %s", expr,
			      zname, (long long)t, (long long)got, want[i]);
		ck_assert_int_eq(cronexpr_prev(e, z, got), got);
		ck_assert_int_le(cronexpr_prev(e, z, got - 1), t);
		t = got;
	}
	cronexpr_free(e);
	tz_free(z);
}

#define SEQ(expr, zname, from, ...)                                                                \
	do {                                                                                       \
		const char *const want_[] = {__VA_ARGS__};                                         \
		assert_next_seq(expr, zname, from, want_, sizeof(want_) / sizeof(want_[0]));      \
	} while (0)

/* ---- parsing ---- */

START_TEST(test_parse_ok)
{
	const char *good[] = {"* * * * *",
			      "0 0 1 1 *",
			      "  5 4 * * sun  ",
			      "\t0\t12\t*\t*\tMON-fri\n",
			      "0-59/5 */2 1,15 jan,JUL 1-5",
			      "5/15 0 * * 7",
			      "*/1 */1 */1 */1 */1",
			      "59 23 31 12 0-7",
			      "0 0 * * 5-7",
			      "*/10 * * * * *",
			      "@yearly",
			      "@annually",
			      "@monthly",
			      "@weekly",
			      "@daily",
			      "@midnight",
			      "@hourly",
			      " @Daily "};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cronexpr_free(parse(good[i]));
	struct cronexpr *e = parse("*/10 * * * * *");
	ck_assert(cronexpr_has_seconds(e));
	cronexpr_free(e);
	e = parse("@hourly");
	ck_assert(!cronexpr_has_seconds(e));
	cronexpr_free(e);
}
END_TEST

START_TEST(test_parse_errors)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{"", "empty expression"},
		{"   \t ", "empty expression"},
		{"* * *", "expected 5 or 6 fields, got 3"},
		{"* * * * * * *", "expected 5 or 6 fields, got 7"},
		{"@sometimes", "unknown macro '@sometimes'"},
		{"@daily *", "unexpected text after @daily"},
		{"60 * * * *", "minute: 60 is out of range 0-59"},
		{"0 24 * * *", "hour: 24 is out of range 0-23"},
		{"0 0 0 * *", "day-of-month: 0 is out of range 1-31"},
		{"0 0 32 * *", "day-of-month: 32 is out of range 1-31"},
		{"0 0 * 13 *", "month: 13 is out of range 1-12"},
		{"0 0 * 0 *", "month: 0 is out of range 1-12"},
		{"0 0 * * 8", "day-of-week: 8 is out of range 0-7"},
		{"60 * * * * *", "second: 60 is out of range 0-59"},
		{"99999999999 * * * *", "minute: 99999999999 is out of range 0-59"},
		{"0 0 * * */0", "day-of-week: step 0"},
		{"*/0 * * * *", "minute: step 0"},
		{"*/60 * * * *", "minute: step 60 is out of range 1-59"},
		{"*/ * * * *", "minute: bad step in '*/'"},
		{"0 5-3 * * *", "hour: range 5-3 goes backwards"},
		{"0 0 * * fri-mon", "day-of-week: range 5-1 goes backwards"},
		{"1,,2 * * * *", "minute: empty list item"},
		{"1, * * * *", "minute: empty list item"},
		{"x * * * *", "minute: bad value 'x'"},
		{"5x * * * *", "minute: bad value '5x'"},
		{"0 jan * * *", "hour: bad value 'jan'"},
		{"0 0 * * monday", "day-of-week: bad value 'monday'"},
		{"0 0 * foo *", "month: bad value 'foo'"},
		{"-1 * * * *", "minute: bad value '-1'"},
		{"1- * * * *", "minute: bad value ''"},
		{"** * * * *", "minute: bad value '**'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		struct cronexpr *e = cronexpr_parse(cases[i].text, err, sizeof(err));
		ck_assert_msg(e == NULL, "'%s' parsed", cases[i].text);
		ck_assert_msg(!strcmp(err, cases[i].err), "'%s': got '%s', want '%s'",
			      cases[i].text, err, cases[i].err);
	}
}
END_TEST

/* Two expressions that must tick at the same instants. */
static void assert_same(const char *a, const char *b, const char *zname)
{
	struct cronexpr *ea = parse(a), *eb = parse(b);
	struct tz *z = zone(zname);
	int64_t t = utc("2026-01-01T00:00:00Z");
	for (int i = 0; i < 50; i++) {
		int64_t na = cronexpr_next(ea, z, t), nb = cronexpr_next(eb, z, t);
		ck_assert_msg(na == nb, "'%s' vs '%s' after %lld", a, b, (long long)t);
		ck_assert_int_ne(na, -1);
		t = na;
	}
	cronexpr_free(ea);
	cronexpr_free(eb);
	tz_free(z);
}

START_TEST(test_equivalents)
{
	assert_same("0 0 * * 7", "0 0 * * 0", "UTC");
	assert_same("0 0 * * sun", "0 0 * * 7", "UTC");
	assert_same("0 0 * * 5-7", "0 0 * * 0,5,6", "UTC");
	assert_same("0 0 1 jan-mar mon-fri", "0 0 1 1,2,3 1,2,3,4,5", "UTC");
	assert_same("5/15 * * * *", "5,20,35,50 * * * *", "UTC");
	assert_same("10-30/10 * * * *", "10,20,30 * * * *", "UTC");
	assert_same("* * * * *", "0 * * * * *", "UTC");
	assert_same("@yearly", "0 0 1 1 *", "Europe/Berlin");
	assert_same("@annually", "0 0 1 1 *", "Europe/Berlin");
	assert_same("@monthly", "0 0 1 * *", "Europe/Berlin");
	assert_same("@weekly", "0 0 * * 0", "Europe/Berlin");
	assert_same("@daily", "0 0 * * *", "Europe/Berlin");
	assert_same("@midnight", "0 0 * * *", "Europe/Berlin");
	assert_same("@hourly", "0 * * * *", "Europe/Berlin");
}
END_TEST

/* ---- calendar ---- */

START_TEST(test_basic_utc)
{
	SEQ("*/20 * * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:00:20Z",
	    "2026-01-01T00:00:40Z", "2026-01-01T00:01:00Z");
	SEQ("30 9 * * mon-fri", "UTC", "2026-01-02T10:00:00Z", "2026-01-05T09:30:00Z",
	    "2026-01-06T09:30:00Z");
	SEQ("@yearly", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z",
	    "2028-01-01T00:00:00Z");
	SEQ("59 23 31 12 *", "UTC", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z");
	/* strictly after: a tick at `after` itself is not returned */
	SEQ("0 0 * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
}
END_TEST

START_TEST(test_month_ends_and_leap_days)
{
	SEQ("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z",
	    "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z",
	    "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z");
	SEQ("0 0 29 2 *", "UTC", "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z",
	    "2032-02-29T00:00:00Z");
	/* 2100 is not a leap year, 2400 is */
	SEQ("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
	/* Feb 29 that is a Sunday: "*" + "/7" starts with '*', so both must match */
	SEQ("0 0 29 2 */7", "UTC", "2026-01-01T00:00:00Z", "2032-02-29T00:00:00Z",
	    "2060-02-29T00:00:00Z");
}
END_TEST

START_TEST(test_dom_dow_rule)
{
	/* both restricted: the 13th or any Friday */
	SEQ("0 0 13 * 5", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
	    "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z");
	/* day-of-month starts with '*': both must match (1st, 14th, 27th and Friday) */
	SEQ("0 0 */13 * 5", "UTC", "2026-01-01T00:00:00Z", "2026-02-27T00:00:00Z",
	    "2026-03-27T00:00:00Z", "2026-05-01T00:00:00Z", "2026-08-14T00:00:00Z");
	/* "0 0 29 2 1": Feb 29 or a Monday in February (Vixie's OR) */
	SEQ("0 0 29 2 1", "UTC", "2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z",
	    "2026-02-09T00:00:00Z");
	SEQ("0 0 29 2 1", "UTC", "2028-02-27T00:00:00Z", "2028-02-28T00:00:00Z",
	    "2028-02-29T00:00:00Z", "2029-02-05T00:00:00Z");
}
END_TEST

static double seconds_since(struct timespec a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

START_TEST(test_never_and_fast)
{
	const char *never[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 */7",
			       "* * * 30 2 *"};
	const char *zones[] = {"UTC", "Europe/Berlin", "Australia/Lord_Howe"};
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (size_t k = 0; k < 3; k++) {
		struct tz *z = zone(zones[k]);
		for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
			struct cronexpr *e = parse(never[i]);
			ck_assert_int_eq(cronexpr_next(e, z, utc("2026-01-01T00:00:00Z")), -1);
			ck_assert_int_eq(cronexpr_prev(e, z, utc("2026-01-01T00:00:00Z")), -1);
			cronexpr_free(e);
		}
		tz_free(z);
	}
	/* 24 searches over 400 years each: generous for a sanitizer build */
	ck_assert_msg(seconds_since(start) < 2.0, "took %.3f s", seconds_since(start));

	/* a rare tick far ahead: the first Feb 29 Sunday after 2060 is 2088 */
	struct cronexpr *e = parse("0 0 29 2 */7");
	struct tz *z = zone("Europe/Berlin");
	ck_assert_int_eq(cronexpr_next(e, z, utc("2060-03-01T00:00:00Z")),
			 utc("2088-02-28T23:00:00Z"));
	ck_assert_int_eq(cronexpr_next(e, z, INT64_MAX), -1);
	ck_assert_int_eq(cronexpr_prev(e, z, INT64_MIN), -1);
	cronexpr_free(e);
	tz_free(z);
}
END_TEST

/* ---- DST, literal expectations ---- */

START_TEST(test_dst_berlin)
{
	/* 2026-03-29: 02:00 CET (01:00Z) jumps to 03:00 CEST; 02:30 fires at
	 * the end of the gap, 01:00Z. 2026-10-25: 03:00 CEST (01:00Z) goes back
	 * to 02:00 CET; 02:30 fires at its first occurrence, 00:30Z. */
	SEQ("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", "2026-03-28T01:30:00Z",
	    "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z");
	SEQ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z",
	    "2026-10-26T01:30:00Z");
	/* several gap times collapse into one tick */
	SEQ("0,15,30,45 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z",
	    "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z");
	/* hour '*': both occurrences, and no double tick at the gap end */
	SEQ("*/15 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", "2026-03-29T00:45:00Z",
	    "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z");
	SEQ("*/15 * * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z",
	    "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z", "2026-10-25T01:30:00Z");
	SEQ("0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z", "2026-03-29T00:00:00Z",
	    "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z");
	SEQ("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z",
	    "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z");
	/* hour '*' follows real time: nothing for the times in the gap (02:30
	 * CET would be an extra tick half an hour after 01:30 CET) */
	SEQ("30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", "2026-03-29T00:30:00Z",
	    "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z");
	/* @daily is not touched by DST in Berlin (midnight exists once) */
	SEQ("@daily", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-28T23:00:00Z",
	    "2026-03-29T22:00:00Z");
}
END_TEST

START_TEST(test_dst_new_york)
{
	/* 2026-03-08 07:00Z: 02:00 EST -> 03:00 EDT; 2026-11-01 06:00Z:
	 * 02:00 EDT -> 01:00 EST, so 01:xx happens twice */
	SEQ("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-07T07:30:00Z",
	    "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z");
	SEQ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z",
	    "2026-11-02T06:30:00Z");
	SEQ("30 2 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T07:30:00Z");
	SEQ("*/30 * * * *", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z",
	    "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z");
	SEQ("0 * * * *", "America/New_York", "2026-03-08T05:30:00Z", "2026-03-08T06:00:00Z",
	    "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z");
	/* 00:00 EDT, then 02:00 EST (02:00 EDT never comes: 01:59:59 EDT is
	 * followed by 01:00 EST), then 04:00 EST */
	SEQ("0 */2 * * *", "America/New_York", "2026-11-01T03:00:00Z", "2026-11-01T04:00:00Z",
	    "2026-11-01T07:00:00Z", "2026-11-01T09:00:00Z");
}
END_TEST

START_TEST(test_dst_lord_howe)
{
	/* 2026-04-05: 02:00 +11 (15:00Z) goes back to 01:30 +1030; 2026-10-04:
	 * 02:00 +1030 (15:30Z) jumps to 02:30 +11 */
	SEQ("30 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00Z", "2026-04-04T14:30:00Z",
	    "2026-04-05T15:00:00Z");
	SEQ("*/15 * * * *", "Australia/Lord_Howe", "2026-04-04T14:40:00Z",
	    "2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z", "2026-04-04T15:15:00Z");
	SEQ("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00Z", "2026-10-03T15:30:00Z",
	    "2026-10-04T15:15:00Z");
	SEQ("*/15 * * * *", "Australia/Lord_Howe", "2026-10-03T15:10:00Z",
	    "2026-10-03T15:15:00Z", "2026-10-03T15:30:00Z", "2026-10-03T15:45:00Z");
}
END_TEST

START_TEST(test_every_second_across_dst)
{
	struct cronexpr *e = parse("* * * * * *");
	struct tz *z = zone("Europe/Berlin");
	const int64_t transitions[] = {utc("2026-03-29T01:00:00Z"), utc("2026-10-25T01:00:00Z")};
	for (int k = 0; k < 2; k++)
		for (int64_t t = transitions[k] - 7200; t < transitions[k] + 7200; t++) {
			ck_assert_int_eq(cronexpr_next(e, z, t), t + 1);
			ck_assert_int_eq(cronexpr_prev(e, z, t), t);
		}
	cronexpr_free(e);
	/* a seconds field in a repeated hour that is not '*': first pass only */
	e = parse("*/20 30 2 * * *");
	ck_assert_int_eq(cronexpr_next(e, z, utc("2026-10-25T00:30:40Z")),
			 utc("2026-10-26T01:30:00Z"));
	ck_assert_int_eq(cronexpr_prev(e, z, utc("2026-10-25T12:00:00Z")),
			 utc("2026-10-25T00:30:40Z"));
	/* and in the gap: one tick at its end */
	ck_assert_int_eq(cronexpr_next(e, z, utc("2026-03-28T12:00:00Z")),
			 utc("2026-03-29T01:00:00Z"));
	ck_assert_int_eq(cronexpr_prev(e, z, utc("2026-03-29T01:00:19Z")),
			 utc("2026-03-29T01:00:00Z"));
	cronexpr_free(e);
	tz_free(z);
}
END_TEST

/* ---- DST, brute force ---- */

struct oracle_case {
	const char *expr;
	bool hour_every;
	bool (*match)(int h, int m, int wday);
};

static bool m_230(int h, int m, int wd)
{
	return (void)wd, h == 2 && m == 30;
}
static bool m_q(int h, int m, int wd)
{
	return (void)h, (void)wd, m % 15 == 0;
}
static bool m_hourly(int h, int m, int wd)
{
	return (void)h, (void)wd, m == 0;
}
static bool m_1545(int h, int m, int wd)
{
	return (void)wd, (m == 15 || m == 45) && h >= 1 && h <= 3;
}
static bool m_10(int h, int m, int wd)
{
	return (void)h, (void)wd, m % 10 == 0;
}
static bool m_even_h(int h, int m, int wd)
{
	return (void)wd, m == 0 && h % 2 == 0;
}
static bool m_hour2(int h, int m, int wd)
{
	return (void)m, (void)wd, h == 2;
}
static bool m_sunday(int h, int m, int wd)
{
	return (h == 1 || h == 2) && (m == 0 || m == 30) && wd == 0;
}

static const struct oracle_case oracle_cases[] = {
	{"30 2 * * *", false, m_230},
	{"*/15 * * * *", true, m_q},
	{"0 * * * *", true, m_hourly},
	{"15,45 1-3 * * *", false, m_1545},
	{"*/10 */1 * * *", true, m_10},
	{"0 */2 * * *", false, m_even_h},
	{"* 2 * * *", false, m_hour2},
	{"0,30 1,2 * * 0", false, m_sunday},
};

static bool civil_matches(const struct oracle_case *c, int64_t local)
{
	int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t sod = local - day * 86400;
	int wday = (int)(((day + 4) % 7 + 7) % 7);
	return sod % 60 == 0 && c->match((int)(sod / 3600), (int)(sod / 60 % 60), wday);
}

#define WINDOW (36 * 3600)

/* Every minute of UTC around transition tr, with the rules of cronexpr.h
 * applied literally: local minutes seen before are repeats, and an offset
 * jump fires if any skipped local minute matches (not for every-hour
 * entries, which follow real time). Returns the count. */
static size_t oracle(const struct oracle_case *c, const struct tz *z, int64_t tr, int64_t *out)
{
	static unsigned char seen[4 * WINDOW / 60];
	int64_t base = tr - WINDOW + tz_offset_at(z, tr - WINDOW) - WINDOW;
	size_t n = 0;
	memset(seen, 0, sizeof(seen));
	for (int64_t u = tr - WINDOW; u <= tr + WINDOW; u += 60) {
		int32_t off = tz_offset_at(z, u), before = tz_offset_at(z, u - 1);
		int64_t local = u + off;
		bool fire = false;
		for (int64_t g = u + before; !c->hour_every && off > before && g < u + off; g += 60)
			fire = fire || civil_matches(c, g);
		size_t slot = (size_t)((local - base) / 60);
		ck_assert_uint_lt(slot, sizeof(seen));
		if (civil_matches(c, local) && (!seen[slot] || c->hour_every))
			fire = true;
		seen[slot] = 1;
		if (fire)
			out[n++] = u;
	}
	return n;
}

/* next() from before the window and prev() from its end both walk the
 * oracle's ticks, one by one. */
static void assert_oracle(const struct cronexpr *e, const struct tz *z, int64_t tr,
			  const int64_t *want, size_t n, const char *what)
{
	int64_t t = tr - WINDOW - 1;
	for (size_t i = 0; i < n; i++) {
		t = cronexpr_next(e, z, t);
		ck_assert_msg(t == want[i], "%s tick %zu: got %lld want %lld", what, i,
			      (long long)t, (long long)want[i]);
	}
	t = tr + WINDOW;
	for (size_t i = n; i-- > 0;) {
		t = cronexpr_prev(e, z, t);
		ck_assert_msg(t == want[i], "%s prev %zu: got %lld want %lld", what, i,
			      (long long)t, (long long)want[i]);
		t--;
	}
}

START_TEST(test_dst_oracle)
{
	static const struct {
		const char *zone;
		const char *at[2];
	} zones[] = {
		{"Europe/Berlin", {"2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"}},
		{"America/New_York", {"2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"}},
		{"Australia/Lord_Howe", {"2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"}},
	};
	static int64_t want[2 * WINDOW / 60 + 2];
	for (size_t zi = 0; zi < 3; zi++) {
		struct tz *z = zone(zones[zi].zone);
		for (size_t ci = 0; ci < sizeof(oracle_cases) / sizeof(oracle_cases[0]); ci++) {
			struct cronexpr *e = parse(oracle_cases[ci].expr);
			for (int k = 0; k < 2; k++) {
				int64_t tr = utc(zones[zi].at[k]);
				size_t n = oracle(&oracle_cases[ci], z, tr, want);
				ck_assert_uint_gt(n, 0);
				char what[96];
				snprintf(what, sizeof(what), "%s '%s'", zones[zi].zone,
					 oracle_cases[ci].expr);
				assert_oracle(e, z, tr, want, n, what);
			}
			cronexpr_free(e);
		}
		tz_free(z);
	}
}
END_TEST

/* prev mirrors next for random instants, expressions and zones. */
START_TEST(test_prev_mirrors_next)
{
	const char *exprs[] = {"30 2 * * *", "*/7 * * * *", "0 0 29 2 *", "0 12 * * 1-5",
			       "*/13 */5 * * * *", "0 3 1 */3 *", "45 1,2 * * *"};
	const char *zones[] = {"UTC", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia",
			       "America/Sao_Paulo"};
	uint64_t seed = 42;
	for (size_t zi = 0; zi < 5; zi++) {
		struct tz *z = zone(zones[zi]);
		for (size_t ei = 0; ei < sizeof(exprs) / sizeof(exprs[0]); ei++) {
			struct cronexpr *e = parse(exprs[ei]);
			for (int k = 0; k < 60; k++) {
				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				int64_t t = (int64_t)((seed >> 16) % 7258118400ULL); /* 1970-2200 */
				int64_t n = cronexpr_next(e, z, t), p = cronexpr_prev(e, z, t);
				ck_assert(n > t && p != -1 && p <= t);
				ck_assert_int_eq(cronexpr_prev(e, z, n), n);
				ck_assert_int_le(cronexpr_prev(e, z, n - 1), t);
				ck_assert_int_eq(cronexpr_next(e, z, p), n);
				ck_assert_int_eq(cronexpr_next(e, z, n - 1), n);
			}
			cronexpr_free(e);
		}
		tz_free(z);
	}
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("cronexpr");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_parse_ok);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_equivalents);
	tcase_add_test(tc, test_basic_utc);
	tcase_add_test(tc, test_month_ends_and_leap_days);
	tcase_add_test(tc, test_dom_dow_rule);
	tcase_add_test(tc, test_never_and_fast);
	tcase_add_test(tc, test_dst_berlin);
	tcase_add_test(tc, test_dst_new_york);
	tcase_add_test(tc, test_dst_lord_howe);
	tcase_add_test(tc, test_every_second_across_dst);
	tcase_add_test(tc, test_dst_oracle);
	tcase_add_test(tc, test_prev_mirrors_next);
	suite_add_tcase(s, tc);
	return s;
}
