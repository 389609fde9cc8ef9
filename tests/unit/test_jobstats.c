/* Unit tests for jobstats: a lane's rows, outcomes and buckets, the
 * overflow row, and folding a dead worker's lane into the master's totals
 * (monotonic sums when the lane is reused). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "jobstats.h"

static const struct jobstats_row *find(const struct jobstats_totals *t, const char *c,
                                       const char *q)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->rows[i].job_class, c) && !strcmp(t->rows[i].queue, q))
			return &t->rows[i];
	return NULL;
}

START_TEST(test_record_and_sum)
{
	struct jobstats_lane *lanes = jobstats_map(2);
	ck_assert_ptr_nonnull(lanes);
	jobstats_record(&lanes[0], "A", "default", "ack", 0.001);
	jobstats_record(&lanes[0], "A", "default", "ack", 0.2);
	jobstats_record(&lanes[0], "A", "critical", "retry", 400);
	jobstats_record(&lanes[1], "A", "default", "dead", 0.005);
	jobstats_record(&lanes[1], "B", "default", "discard", 1);
	struct jobstats_totals t = {0};
	jobstats_add_lane(&t, &lanes[0]);
	jobstats_add_lane(&t, &lanes[1]);
	jobstats_sort(&t);
	ck_assert_uint_eq(t.n, 3);
	ck_assert_str_eq(t.rows[0].queue, "critical"); /* sorted by class, then queue */
	const struct jobstats_row *a = find(&t, "A", "default");
	ck_assert_uint_eq(a->processed, 3);
	ck_assert_uint_eq(a->failed, 1);
	ck_assert_uint_eq(a->dead, 1);
	ck_assert_uint_eq(a->retried, 0);
	ck_assert_uint_eq(a->buckets[0], 2); /* 0.001 and 0.005 (le is inclusive) */
	ck_assert_uint_eq(a->buckets[5], 1); /* 0.2 <= 0.25 */
	const struct jobstats_row *ac = find(&t, "A", "critical");
	ck_assert_uint_eq(ac->retried, 1);
	ck_assert_uint_eq(ac->buckets[JOBSTATS_BUCKETS - 1], 1); /* +Inf */
	ck_assert_uint_eq(ac->sum_us, 400000000u);
	const struct jobstats_row *b = find(&t, "B", "default");
	ck_assert_uint_eq(b->failed, 1);
	ck_assert_uint_eq(b->retried + b->dead, 0);
	jobstats_totals_free(&t);
	jobstats_unmap(lanes, 2);
}
END_TEST

START_TEST(test_overflow_row)
{
	struct jobstats_lane *lane = jobstats_map(1);
	char name[32], longname[JOBSTATS_CLASS_MAX + 10];
	for (int i = 0; i < JOBSTATS_ROWS + 5; i++) {
		snprintf(name, sizeof(name), "C%d", i);
		jobstats_record(lane, name, "q", "ack", 0.01);
	}
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	jobstats_record(lane, longname, "q", "ack", 0.01);
	struct jobstats_totals t = {0};
	jobstats_add_lane(&t, lane);
	ck_assert_uint_eq(t.n, JOBSTATS_ROWS + 1);
	ck_assert_uint_eq(find(&t, JOBSTATS_OTHER, JOBSTATS_OTHER)->processed, 6);
	ck_assert_uint_eq(find(&t, "C0", "q")->processed, 1);
	jobstats_totals_free(&t);
	jobstats_unmap(lane, 1);
}
END_TEST

START_TEST(test_fold_keeps_sums_monotonic)
{
	struct jobstats_lane *lane = jobstats_map(1);
	struct jobstats_totals dead = {0}, t = {0};
	jobstats_record(lane, "A", "default", "ack", 0.01);
	jobstats_record(lane, "A", "default", "ack", 0.01);
	jobstats_fold(&dead, lane); /* its worker died */
	for (size_t i = 0; i <= JOBSTATS_ROWS; i++)
		ck_assert_uint_eq(lane->rows[i].used, 0);
	jobstats_record(lane, "A", "default", "retry", 0.01); /* a new worker, same lane */
	jobstats_add_totals(&t, &dead);
	jobstats_add_lane(&t, lane);
	ck_assert_uint_eq(find(&t, "A", "default")->processed, 3);
	ck_assert_uint_eq(find(&t, "A", "default")->retried, 1);
	jobstats_totals_free(&t);
	jobstats_totals_free(&dead);
	jobstats_unmap(lane, 1);
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("jobstats");
	TCase *tc = tcase_create("lanes");
	tcase_add_test(tc, test_record_and_sum);
	tcase_add_test(tc, test_overflow_row);
	tcase_add_test(tc, test_fold_keeps_sums_monotonic);
	suite_add_tcase(s, tc);
	return s;
}
