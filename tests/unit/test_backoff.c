/* Unit tests for backoff: respawn delays with fixed random numbers, so the
 * doubling, the 60 s cap, the +/-20 % jitter and its clamping are checked
 * exactly instead of by timing real restarts. */
#include <check.h>
#include <limits.h>
#include <stdlib.h>

#include "suite.h"
#include "backoff.h"

#define EPS 1e-9
#define RND_MID 0.5           /* no jitter */
#define RND_TOP (1.0 - 1e-12) /* util_random() never returns 1.0 */

START_TEST(test_healthy_restarts_at_once)
{
	ck_assert_double_eq(backoff_respawn_delay(0, RND_MID), 0.0);
	ck_assert_double_eq(backoff_respawn_delay(0, 0.0), 0.0);
	ck_assert_double_eq(backoff_respawn_delay(0, RND_TOP), 0.0);
}
END_TEST

START_TEST(test_first_quick_death_waits_one_second)
{
	ck_assert_double_eq_tol(backoff_respawn_delay(1, RND_MID), 1.0, EPS);
}
END_TEST

START_TEST(test_delay_doubles)
{
	static const double want[] = {2, 4, 8, 16, 32};
	for (unsigned n = 2; n <= 6; n++)
		ck_assert_double_eq_tol(backoff_respawn_delay(n, RND_MID), want[n - 2], EPS);
}
END_TEST

START_TEST(test_delay_capped_at_sixty)
{
	static const unsigned ns[] = {7, 8, 10, 31, 32, 64, 1000, 1000000, UINT_MAX};
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		ck_assert_double_eq_tol(backoff_respawn_delay(ns[i], RND_MID), 60.0, EPS);
}
END_TEST

START_TEST(test_jitter_low_bound)
{
	/* rnd 0 is -20 %: 4 -> 3.2, 32 -> 25.6, cap 60 -> 48 */
	ck_assert_double_eq_tol(backoff_respawn_delay(3, 0.0), 3.2, EPS);
	ck_assert_double_eq_tol(backoff_respawn_delay(6, 0.0), 25.6, EPS);
	ck_assert_double_eq_tol(backoff_respawn_delay(7, 0.0), 48.0, EPS);
	ck_assert_double_eq_tol(backoff_respawn_delay(1000, 0.0), 48.0, EPS);
}
END_TEST

START_TEST(test_jitter_high_bound)
{
	/* rnd just under 1 is +20 %: 4 -> 4.8, 32 -> 38.4 */
	ck_assert_double_eq_tol(backoff_respawn_delay(3, RND_TOP), 4.8, 1e-6);
	ck_assert_double_eq_tol(backoff_respawn_delay(6, RND_TOP), 38.4, 1e-6);
}
END_TEST

START_TEST(test_jitter_clamped_to_min)
{
	/* 1 s - 20 % would be 0.8 s: never restart faster than once a second */
	ck_assert_double_eq_tol(backoff_respawn_delay(1, 0.0), 1.0, EPS);
	ck_assert_double_eq_tol(backoff_respawn_delay(1, 0.25), 1.0, EPS);
	ck_assert_double_eq_tol(backoff_respawn_delay(1, RND_TOP), 1.2, 1e-6);
}
END_TEST

START_TEST(test_jitter_clamped_to_max)
{
	/* 60 s + 20 % would be 72 s */
	ck_assert_double_eq_tol(backoff_respawn_delay(7, RND_TOP), 60.0, EPS);
	ck_assert_double_eq_tol(backoff_respawn_delay(UINT_MAX, RND_TOP), 60.0, EPS);
	ck_assert_double_eq_tol(backoff_respawn_delay(7, 0.75), 60.0, EPS);
}
END_TEST

START_TEST(test_delay_always_within_bounds)
{
	for (unsigned n = 1; n <= 40; n++)
		for (int k = 0; k <= 100; k++) {
			double rnd = k == 100 ? RND_TOP : k / 100.0;
			double d = backoff_respawn_delay(n, rnd);
			ck_assert_msg(d >= BACKOFF_RESPAWN_MIN && d <= BACKOFF_RESPAWN_MAX,
			              "n=%u rnd=%g gave %g", n, rnd, d);
		}
}
END_TEST

START_TEST(test_delay_grows_with_n)
{
	for (unsigned n = 1; n < 20; n++)
		ck_assert(backoff_respawn_delay(n + 1, RND_MID) >=
		          backoff_respawn_delay(n, RND_MID));
}
END_TEST

START_TEST(test_quick_death)
{
	ck_assert(backoff_is_quick_death(0.0));
	ck_assert(backoff_is_quick_death(9.9));
	ck_assert(!backoff_is_quick_death(10.0));
	ck_assert(!backoff_is_quick_death(10.1));
	ck_assert(!backoff_is_quick_death(3600.0));
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("backoff");
	TCase *tc = tcase_create("respawn");
	tcase_add_test(tc, test_healthy_restarts_at_once);
	tcase_add_test(tc, test_first_quick_death_waits_one_second);
	tcase_add_test(tc, test_delay_doubles);
	tcase_add_test(tc, test_delay_capped_at_sixty);
	tcase_add_test(tc, test_jitter_low_bound);
	tcase_add_test(tc, test_jitter_high_bound);
	tcase_add_test(tc, test_jitter_clamped_to_min);
	tcase_add_test(tc, test_jitter_clamped_to_max);
	tcase_add_test(tc, test_delay_always_within_bounds);
	tcase_add_test(tc, test_delay_grows_with_n);
	tcase_add_test(tc, test_quick_death);
	suite_add_tcase(s, tc);
	return s;
}
