/* Unit tests for cpus: the cgroup v2 cpu.max parser on fixed text, and a
 * sanity check of cpus_usable() against this process's affinity mask. */
#include <check.h>
#include <sched.h>
#include <stdlib.h>

#include "suite.h"
#include "cpus.h"

START_TEST(test_no_quota)
{
	ck_assert_int_eq(cpus_parse_cpu_max("max 100000\n"), 0);
	ck_assert_int_eq(cpus_parse_cpu_max("max 100000"), 0);
}
END_TEST

START_TEST(test_whole_cpus)
{
	ck_assert_int_eq(cpus_parse_cpu_max("200000 100000"), 2);
	ck_assert_int_eq(cpus_parse_cpu_max("100000 100000\n"), 1);
	ck_assert_int_eq(cpus_parse_cpu_max("800000 100000\n"), 8);
	ck_assert_int_eq(cpus_parse_cpu_max("50000 50000\n"), 1);
}
END_TEST

START_TEST(test_fraction_rounds_up)
{
	ck_assert_int_eq(cpus_parse_cpu_max("150000 100000"), 2);
	ck_assert_int_eq(cpus_parse_cpu_max("100001 100000"), 2);
	ck_assert_int_eq(cpus_parse_cpu_max("250000 100000\n"), 3);
}
END_TEST

START_TEST(test_less_than_one_cpu_is_one)
{
	ck_assert_int_eq(cpus_parse_cpu_max("50000 100000"), 1);
	ck_assert_int_eq(cpus_parse_cpu_max("1000 100000"), 1);
	ck_assert_int_eq(cpus_parse_cpu_max("1 100000"), 1);
}
END_TEST

START_TEST(test_garbage_rejected)
{
	ck_assert_int_eq(cpus_parse_cpu_max("garbage"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max(""), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("\n"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("max"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("150000"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("abc 100000"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("15x 100000"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("max abc"), -1);
}
END_TEST

START_TEST(test_nonpositive_rejected)
{
	ck_assert_int_eq(cpus_parse_cpu_max("0 100000"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("-100000 100000"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("100000 0"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("100000 -100000"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("max 0"), -1);
}
END_TEST

START_TEST(test_huge_and_trailing_junk)
{
	/* No overflow on the largest quota, and the result stays an int >= 1. */
	int n = cpus_parse_cpu_max("9223372036854775807 100000");
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(cpus_parse_cpu_max("300000000000000 100000"), 65536);
	ck_assert_int_eq(cpus_parse_cpu_max("150000 100000junk"), -1);
	ck_assert_int_eq(cpus_parse_cpu_max("150000 100000 extra"), -1);
}
END_TEST

START_TEST(test_usable_within_affinity)
{
	cpu_set_t set;
	int n = cpus_usable();
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	/* a quota may lower the count, nothing may raise it above the mask */
	ck_assert_int_le(n, CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1);
	ck_assert_int_eq(cpus_usable(), n); /* stable between calls */
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("cpus");
	TCase *tc = tcase_create("cpu_max");
	tcase_add_test(tc, test_no_quota);
	tcase_add_test(tc, test_whole_cpus);
	tcase_add_test(tc, test_fraction_rounds_up);
	tcase_add_test(tc, test_less_than_one_cpu_is_one);
	tcase_add_test(tc, test_garbage_rejected);
	tcase_add_test(tc, test_nonpositive_rejected);
	tcase_add_test(tc, test_huge_and_trailing_junk);
	suite_add_tcase(s, tc);
	tc = tcase_create("usable");
	tcase_add_test(tc, test_usable_within_affinity);
	suite_add_tcase(s, tc);
	return s;
}
