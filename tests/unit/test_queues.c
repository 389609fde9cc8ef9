/* Unit tests for queues: strict config order, and the weighted random order
 * checked against exact probabilities and against a literal transcription of
 * Sidekiq's shuffle-and-deduplicate, driven by a seeded PRNG. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "config.h"
#include "queues.h"

#define MAXQ 8

struct prng {
	uint64_t state;
	unsigned calls;
};

/* splitmix64: deterministic, good enough for distribution checks */
static double prng_next(void *ctx)
{
	struct prng *p = ctx;
	uint64_t z = (p->state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	p->calls++;
	return (double)(z >> 11) / 9007199254740992.0; /* [0, 1) */
}

static double fixed_value;
static double fixed_next(void *ctx)
{
	(void)ctx;
	return fixed_value;
}

static struct config_queue qbuf[MAXQ];
static char names[MAXQ][8];

/* A config with the given weights; weighted as config.c decides it. */
static struct config make(const int *weights, size_t n)
{
	struct config c;
	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < n; i++) {
		names[i][0] = (char)('a' + i);
		names[i][1] = '\0';
		qbuf[i].name = names[i];
		qbuf[i].weight = weights[i];
		if (weights[i] != 1)
			c.queues_weighted = true;
	}
	c.queues = qbuf;
	c.nqueues = n;
	return c;
}

static void assert_permutation(const size_t *order, size_t got, size_t n)
{
	bool seen[MAXQ] = {false};
	ck_assert_uint_eq(got, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_lt(order[i], n);
		ck_assert_msg(!seen[order[i]], "queue %zu twice", order[i]);
		seen[order[i]] = true;
	}
}

/* Sidekiq 6.4 BasicFetch#queues_cmd, transcribed: a list with each queue
 * weight times, Fisher-Yates shuffled, first occurrences kept. */
static size_t sidekiq_order(const struct config *c, struct prng *p, size_t *order)
{
	size_t list[64], n = 0, k = 0;
	bool seen[MAXQ] = {false};
	for (size_t i = 0; i < c->nqueues; i++)
		for (int w = 0; w < c->queues[i].weight; w++)
			list[n++] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(prng_next(p) * (double)(i + 1));
		size_t t = list[i];
		list[i] = list[j];
		list[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		if (!seen[list[i]]) {
			seen[list[i]] = true;
			order[k++] = list[i];
		}
	return k;
}

START_TEST(test_strict_is_config_order)
{
	static const int w[] = {1, 1, 1, 1};
	struct config c = make(w, 4);
	struct prng p = {42, 0};
	size_t order[MAXQ];
	ck_assert(!c.queues_weighted);
	for (int round = 0; round < 100; round++) {
		ck_assert_uint_eq(queues_order(&c, prng_next, &p, order), 4);
		for (size_t i = 0; i < 4; i++)
			ck_assert_uint_eq(order[i], i);
	}
	ck_assert_uint_eq(p.calls, 0); /* strict never draws */
}
END_TEST

START_TEST(test_empty_and_single)
{
	static const int w[] = {5};
	struct config c = make(w, 1);
	struct prng p = {1, 0};
	size_t order[MAXQ] = {99};
	ck_assert(c.queues_weighted);
	ck_assert_uint_eq(queues_order(&c, prng_next, &p, order), 1);
	ck_assert_uint_eq(order[0], 0);
	c.nqueues = 0;
	ck_assert_uint_eq(queues_order(&c, prng_next, &p, order), 0);
	c.queues_weighted = false;
	ck_assert_uint_eq(queues_order(&c, prng_next, &p, order), 0);
}
END_TEST

START_TEST(test_weighted_three_to_one)
{
	static const int w[] = {3, 1};
	struct config c = make(w, 2);
	struct prng p = {7, 0};
	size_t order[MAXQ];
	int heavy_first = 0;
	for (int i = 0; i < 10000; i++) {
		assert_permutation(order, queues_order(&c, prng_next, &p, order), 2);
		heavy_first += order[0] == 0;
	}
	/* P(heavy first) = 3/4 */
	ck_assert_int_gt(heavy_first, 7200);
	ck_assert_int_lt(heavy_first, 7800);
}
END_TEST

/* Probability that a weighted draw without replacement yields order. */
static double order_probability(const int *w, size_t n, const size_t *order)
{
	double left = 0, p = 1;
	for (size_t i = 0; i < n; i++)
		left += w[i];
	for (size_t i = 0; i < n; i++) {
		p *= w[order[i]] / left;
		left -= w[order[i]];
	}
	return p;
}

static size_t order_index(const size_t *o)
{
	return o[0] * 9 + o[1] * 3 + o[2];
}

/* 3:2:1 over 60000 draws: every one of the 6 orders appears as often as the
 * exact probability says, and as often as Sidekiq's own algorithm gives. */
START_TEST(test_weighted_matches_sidekiq_distribution)
{
	static const int w[] = {3, 2, 1};
	static const size_t perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
	                                   {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
	enum { DRAWS = 60000 };
	struct config c = make(w, 3);
	struct prng p = {2024, 0}, q = {99, 0};
	size_t order[MAXQ];
	int ours[27] = {0}, theirs[27] = {0};
	for (int i = 0; i < DRAWS; i++) {
		assert_permutation(order, queues_order(&c, prng_next, &p, order), 3);
		ours[order_index(order)]++;
		assert_permutation(order, sidekiq_order(&c, &q, order), 3);
		theirs[order_index(order)]++;
	}
	for (size_t k = 0; k < 6; k++) {
		double want = order_probability(w, 3, perms[k]);
		double a = ours[order_index(perms[k])] / (double)DRAWS;
		double b = theirs[order_index(perms[k])] / (double)DRAWS;
		ck_assert_msg(fabs(a - want) < 0.01, "order %zu: %f, want %f", k, a, want);
		ck_assert_msg(fabs(a - b) < 0.015, "order %zu: %f, sidekiq %f", k, a, b);
	}
	/* n - 1 draws per fetch */
	ck_assert_uint_eq(p.calls, 2 * DRAWS);
}
END_TEST

START_TEST(test_weighted_odd_random_values)
{
	static const int w[] = {2, 1, 4, 1, 3};
	static const double values[] = {0.0, 0.5, 0.9999999999, 1.0, 7.0, -1.0, NAN};
	struct config c = make(w, 5);
	size_t order[MAXQ];
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		fixed_value = values[i];
		assert_permutation(order, queues_order(&c, fixed_next, NULL, order), 5);
	}
	/* rnd 0 always picks the first remaining queue: config order */
	fixed_value = 0.0;
	queues_order(&c, fixed_next, NULL, order);
	for (size_t i = 0; i < 5; i++)
		ck_assert_uint_eq(order[i], i);
	/* rnd maps [0,1) onto the weights as intervals: with 2:1:1, [0,.5) is a,
	 * [.5,.75) b and [.75,1) c, each boundary belonging to the next queue */
	static const int w3[] = {2, 1, 1};
	struct config c3 = make(w3, 3);
	fixed_value = 0.5;
	queues_order(&c3, fixed_next, NULL, order);
	ck_assert_uint_eq(order[0], 1);
	fixed_value = 0.4999999;
	queues_order(&c3, fixed_next, NULL, order);
	ck_assert_uint_eq(order[0], 0);
	fixed_value = 0.75;
	queues_order(&c3, fixed_next, NULL, order);
	ck_assert_uint_eq(order[0], 2);
	c = make(w, 5);
	/* just below 1: the last queue first */
	fixed_value = 0.9999999999;
	queues_order(&c, fixed_next, NULL, order);
	ck_assert_uint_eq(order[0], 4);
}
END_TEST

START_TEST(test_huge_weights_are_cheap)
{
	static const int w[] = {1000000, 1, 1000000};
	struct config c = make(w, 3);
	struct prng p = {5, 0};
	size_t order[MAXQ];
	int light_first = 0;
	for (int i = 0; i < 20000; i++) {
		assert_permutation(order, queues_order(&c, prng_next, &p, order), 3);
		light_first += order[0] == 1;
	}
	ck_assert_int_lt(light_first, 5); /* p = 5e-7 per draw */
	ck_assert_uint_eq(p.calls, 2 * 20000);
}
END_TEST

/* The same decisions through config.c's parsing of `queues`. */
START_TEST(test_with_parsed_config)
{
	char err[256];
	size_t order[MAXQ];
	struct prng p = {3, 0};
	struct config *c = config_new();
	ck_assert_int_eq(config_set(c, NULL, "queues", "critical, default, low", err, sizeof(err)),
	                 0);
	ck_assert(!c->queues_weighted);
	ck_assert_uint_eq(queues_order(c, prng_next, &p, order), 3);
	ck_assert(order[0] == 0 && order[1] == 1 && order[2] == 2);
	ck_assert_int_eq(config_set(c, NULL, "queues", "critical:3, default:1", err, sizeof(err)),
	                 0);
	ck_assert(c->queues_weighted);
	int critical_first = 0;
	for (int i = 0; i < 4000; i++) {
		assert_permutation(order, queues_order(c, prng_next, &p, order), 2);
		critical_first += order[0] == 0;
	}
	ck_assert_int_gt(critical_first, 2800);
	ck_assert_int_lt(critical_first, 3200);
	config_free(c);
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("queues");
	TCase *tc = tcase_create("order");
	tcase_add_test(tc, test_strict_is_config_order);
	tcase_add_test(tc, test_empty_and_single);
	tcase_add_test(tc, test_weighted_three_to_one);
	tcase_add_test(tc, test_weighted_matches_sidekiq_distribution);
	tcase_add_test(tc, test_weighted_odd_random_values);
	tcase_add_test(tc, test_huge_weights_are_cheap);
	tcase_add_test(tc, test_with_parsed_config);
	suite_add_tcase(s, tc);
	return s;
}
