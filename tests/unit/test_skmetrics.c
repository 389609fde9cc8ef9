/* test_skmetrics: Sidekiq Metrics buckets, key names and the flush call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "skmetrics.h"
#include "suite.h"

START_TEST(test_bucket_bounds)
{
	/* metrics/shared.rb: the first bound the time is under. */
	ck_assert_int_eq(skmetrics_bucket(0), 0);
	ck_assert_int_eq(skmetrics_bucket(19), 0);
	ck_assert_int_eq(skmetrics_bucket(20), 1);
	ck_assert_int_eq(skmetrics_bucket(280), 7); /* shared.rb's own example */
	ck_assert_int_eq(skmetrics_bucket(1099), 10);
	ck_assert_int_eq(skmetrics_bucket(1100), 11);
	ck_assert_int_eq(skmetrics_bucket(334999), 24);
	ck_assert_int_eq(skmetrics_bucket(335000), 25);
	ck_assert_int_eq(skmetrics_bucket(1000000000LL), 25);
}
END_TEST

static void check_key(char *got, const char *want)
{
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_keys_two_digit_minute)
{
	double t = 1739522585; /* 2025-02-14 08:43:05 UTC */
	check_key(keys_metrics_v7(t), "j|20250214|8:43");
	check_key(keys_metrics_v8(t), "j|250214|8:43");
	check_key(keys_metrics_v8_rollup(t), "j|250214|8:4");
	check_key(keys_metrics_hist_v7("HardJob", t), "HardJob-14-08:43");
	check_key(keys_metrics_hist_v8("HardJob", t), "h|HardJob-14-8:43");
}
END_TEST

START_TEST(test_keys_padding)
{
	double t = 1738656239; /* 2025-02-04 08:03:59 UTC */
	check_key(keys_metrics_v7(t), "j|20250204|8:3");
	check_key(keys_metrics_v8(t), "j|250204|8:03");
	check_key(keys_metrics_v8_rollup(t), "j|250204|8:0");
	check_key(keys_metrics_hist_v7("A::B", t), "A::B-04-08:3");
	check_key(keys_metrics_hist_v8("A::B", t), "h|A::B-4-8:3");
	t = 1767225599; /* 2025-12-31 23:59:59 UTC */
	check_key(keys_metrics_v7(t), "j|20251231|23:59");
	check_key(keys_metrics_v8_rollup(t), "j|251231|23:5");
}
END_TEST

START_TEST(test_record_counts_as_sidekiq)
{
	struct skmetrics m = {0};
	ck_assert(skmetrics_is_empty(&m));
	ck_assert_int_eq(skmetrics_record(&m, "A", 5, false), 0);
	ck_assert_int_eq(skmetrics_record(&m, "A", 25, false), 0);
	ck_assert_int_eq(skmetrics_record(&m, "A", 900, true), 0); /* time not counted */
	ck_assert_int_eq(skmetrics_record(&m, "B", 3, true), 0);
	ck_assert_uint_eq(m.n, 2);
	ck_assert_int_eq(m.classes[0].runs, 3);
	ck_assert_int_eq(m.classes[0].failures, 1);
	ck_assert_int_eq(m.classes[0].ms, 30);
	ck_assert_uint_eq(m.classes[0].hist[0], 1);
	ck_assert_uint_eq(m.classes[0].hist[1], 1);
	ck_assert_int_eq(m.classes[1].successes, 0);

	struct skmetrics_call call;
	skmetrics_build(&m, 1739522585, &call);
	ck_assert_int_eq(call.nkeys, 3 + 2 * 2);
	ck_assert_int_eq(call.argc, 7 + 2 + 5 * 2);
	ck_assert_str_eq(call.argv[0], "j|20250214|8:43");
	ck_assert_str_eq(call.argv[2], "j|250214|8:4");
	ck_assert_str_eq(call.argv[5], "B-14-08:43");
	ck_assert_str_eq(call.argv[6], "h|B-14-8:43");
	ck_assert_str_eq(call.argv[7], "28800");
	ck_assert_str_eq(call.argv[8], "259200");
	const char *a[] = {"A", "3", "1", "30", "0:1,1:1", "B", "1", "1", "", ""};
	for (int i = 0; i < 10; i++) {
		ck_assert_str_eq(call.argv[9 + i], a[i]);
		ck_assert_uint_eq(call.lens[9 + i], strlen(a[i]));
	}
	skmetrics_call_free(&call);
	skmetrics_clear(&m);
	ck_assert(skmetrics_is_empty(&m));
	skmetrics_free(&m);
}
END_TEST

START_TEST(test_table_is_bounded)
{
	struct skmetrics m = {0};
	char name[32];
	for (int i = 0; i < SKMETRICS_MAX_CLASSES; i++) {
		snprintf(name, sizeof(name), "C%d", i);
		ck_assert_int_eq(skmetrics_record(&m, name, 1, false), 0);
	}
	ck_assert_int_eq(skmetrics_record(&m, "One too many", 1, false), -1);
	ck_assert_int_eq(skmetrics_record(&m, "C7", 1, false), 0); /* known: still counted */
	ck_assert_int_eq(m.dropped, 1);
	skmetrics_free(&m);
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("skmetrics");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_bucket_bounds);
	tcase_add_test(tc, test_keys_two_digit_minute);
	tcase_add_test(tc, test_keys_padding);
	tcase_add_test(tc, test_record_counts_as_sidekiq);
	tcase_add_test(tc, test_table_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}
