/* Unit tests for cronplan: which ticks are due and pushed under each
 * catch_up policy (with fixed "now" values), the catch-up cap, the jid of a
 * tick, and what makes an entry "changed". Expected instants are written as
 * literal epoch seconds (checked with `date -u -d @N`). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "suite.h"
#include "cronplan.h"

/* 2026-11-28T10:00:00Z */
#define T10 1795860000LL

static struct config_cron entry(const char *schedule)
{
	return (struct config_cron){.name = "e", .schedule = (char *)schedule, .job_class = "C"};
}

static void plan(struct cronplan *p, const char *schedule)
{
	char err[256];
	struct config_cron e = entry(schedule);
	ck_assert_msg(!cronplan_init(p, &e, err, sizeof(err)), "%s", err);
}

static int64_t ticks[CRON_CATCH_UP_MAX];

START_TEST(test_nothing_due)
{
	struct cronplan p;
	int64_t newest;
	long skipped;
	plan(&p, "0 * * * *");
	/* watermark at 10:00, now 10:59:59: the next tick (11:00) is not due */
	ck_assert_uint_eq(cronplan_due(&p, CATCH_UP_ALL, T10, (double)T10 + 3599.9, ticks, &newest,
				       &skipped), 0);
	ck_assert_int_eq(newest, T10);
	ck_assert_int_eq(skipped, 0);
	cronplan_fini(&p);
}
END_TEST

START_TEST(test_on_time_tick)
{
	struct cronplan p;
	int64_t newest;
	long skipped;
	plan(&p, "0 * * * *");
	for (int policy = CATCH_UP_LATEST; policy <= CATCH_UP_NONE; policy++) {
		size_t n = cronplan_due(&p, policy, T10 - 3600, (double)T10 + 0.004, ticks, &newest,
					&skipped);
		ck_assert_uint_eq(n, 1);
		ck_assert_int_eq(ticks[0], T10);
		ck_assert_int_eq(newest, T10);
		ck_assert_int_eq(skipped, 0);
	}
	cronplan_fini(&p);
}
END_TEST

START_TEST(test_policies_after_a_gap)
{
	struct cronplan p;
	int64_t newest;
	long skipped;
	plan(&p, "0 * * * *");
	/* last handled 05:00; now 10:30: 06..10 are due */
	double now = (double)T10 + 1800;
	size_t n = cronplan_due(&p, CATCH_UP_LATEST, T10 - 5 * 3600, now, ticks, &newest, &skipped);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(ticks[0], T10);
	ck_assert_int_eq(newest, T10);
	ck_assert_int_eq(skipped, 4);

	n = cronplan_due(&p, CATCH_UP_ALL, T10 - 5 * 3600, now, ticks, &newest, &skipped);
	ck_assert_uint_eq(n, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(ticks[i], T10 - (4 - i) * 3600);
	ck_assert_int_eq(newest, T10);
	ck_assert_int_eq(skipped, 0);

	/* none: the newest is 30 min late, so nothing is pushed */
	n = cronplan_due(&p, CATCH_UP_NONE, T10 - 5 * 3600, now, ticks, &newest, &skipped);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(newest, T10);
	ck_assert_int_eq(skipped, 5);
	/* ...but one 59 s late is still on time */
	n = cronplan_due(&p, CATCH_UP_NONE, T10 - 5 * 3600, (double)T10 + 59, ticks, &newest,
			 &skipped);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(skipped, 4);
	cronplan_fini(&p);
}
END_TEST

START_TEST(test_catch_up_all_is_capped)
{
	struct cronplan p;
	int64_t newest;
	long skipped;
	plan(&p, "* * * * * *");
	size_t n = cronplan_due(&p, CATCH_UP_ALL, T10 - 5000, (double)T10, ticks, &newest,
				&skipped);
	ck_assert_uint_eq(n, CRON_CATCH_UP_MAX);
	ck_assert_int_eq(ticks[0], T10 - CRON_CATCH_UP_MAX + 1);
	ck_assert_int_eq(ticks[n - 1], T10);
	ck_assert_int_eq(newest, T10);
	ck_assert_int_eq(skipped, 5000 - CRON_CATCH_UP_MAX);
	/* a year-long gap costs no more than the cap */
	n = cronplan_due(&p, CATCH_UP_ALL, T10 - 366 * 86400, (double)T10, ticks, &newest,
			 &skipped);
	ck_assert_uint_eq(n, CRON_CATCH_UP_MAX);
	ck_assert_int_eq(skipped, CRON_COUNT_MAX);
	cronplan_fini(&p);
}
END_TEST

START_TEST(test_time_zone_ticks)
{
	/* 03:00 Europe/Berlin in winter (CET, UTC+1) is 02:00Z */
	struct cronplan p;
	char err[256];
	int64_t newest;
	long skipped;
	struct config_cron e = entry("0 3 * * *");
	e.timezone = "Europe/Berlin";
	ck_assert_msg(!cronplan_init(&p, &e, err, sizeof(err)), "%s", err);
	/* 2026-11-28T02:00:00Z = 1795831200 */
	ck_assert_uint_eq(cronplan_due(&p, CATCH_UP_LATEST, 1795831200 - 86400, 1795831200.5, ticks,
				       &newest, &skipped), 1);
	ck_assert_int_eq(ticks[0], 1795831200);
	cronplan_fini(&p);
}
END_TEST

START_TEST(test_jid)
{
	char a[25], b[25], c[25];
	cronplan_jid("tick", 0x6a1b2c3d, a);
	cronplan_jid("tick", 0x6a1b2c3d, b);
	cronplan_jid("tock", 0x6a1b2c3d, c);
	ck_assert_uint_eq(strlen(a), 24);
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	ck_assert_str_eq(a + 16, "6a1b2c3d");
	for (int i = 0; i < 24; i++)
		ck_assert(strchr("0123456789abcdef", a[i]));
}
END_TEST

START_TEST(test_spec_and_errors)
{
	struct cronplan p, q;
	char err[256];
	struct config_cron e = entry("0 3 * * *");
	plan(&p, "0 3 * * *");
	e.catch_up = CATCH_UP_ALL;
	e.overlap_forbid = true;
	ck_assert(!cronplan_init(&q, &e, err, sizeof(err)));
	ck_assert_str_eq(p.spec, q.spec); /* policy changes keep the watermark */
	cronplan_fini(&q);
	e.queue = "other";
	ck_assert(!cronplan_init(&q, &e, err, sizeof(err)));
	ck_assert_str_ne(p.spec, q.spec);
	ck_assert_str_eq(q.spec, "0 3 * * *|UTC|C|[]|other|true");
	cronplan_fini(&q);
	cronplan_fini(&p);
	e = entry("0 24 * * *");
	ck_assert_int_eq(cronplan_init(&q, &e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "schedule '0 24 * * *': hour"));
	e = entry("@daily");
	e.timezone = "Nowhere/Land";
	ck_assert_int_eq(cronplan_init(&q, &e, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "timezone: "));
	ck_assert_ptr_nonnull(strstr(err, "Nowhere/Land"));
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("cronplan");
	TCase *tc = tcase_create("due");
	tcase_add_test(tc, test_nothing_due);
	tcase_add_test(tc, test_on_time_tick);
	tcase_add_test(tc, test_policies_after_a_gap);
	tcase_add_test(tc, test_catch_up_all_is_capped);
	tcase_add_test(tc, test_time_zone_ticks);
	tcase_add_test(tc, test_jid);
	tcase_add_test(tc, test_spec_and_errors);
	suite_add_tcase(s, tc);
	return s;
}
