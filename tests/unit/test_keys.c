/* Unit tests for keys: without a namespace every name is Sidekiq's or
 * forq's own as before; with one, every fixed key and every built key
 * carries "<namespace>:" (as redis-namespace writes them), the SCAN
 * pattern escapes it, and keys_strip takes it off again. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "keys.h"

static void teardown(void)
{
	keys_set_namespace(NULL);
}

static void expect(char *got, const char *want)
{
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_no_namespace)
{
	keys_set_namespace("");
	ck_assert_str_eq(KEY_RETRY, "retry");
	ck_assert_str_eq(KEY_QUEUE_PREFIX, "queue:");
	ck_assert_str_eq(keys_namespace(), "");
	expect(keys_queue("default"), "queue:default");
	expect(keys_lost("abc"), "forq:lost:abc");
	expect(keys_working_pattern("h*st"), "forq:working:h\\*st:*");
	ck_assert_str_eq(keys_strip("queue:x"), "queue:x");
}
END_TEST

START_TEST(test_every_key_is_namespaced)
{
	const char *ns = "app:sidekiq:production:";
	keys_set_namespace("app:sidekiq:production");
	ck_assert_str_eq(keys_namespace(), "app:sidekiq:production");
	for (int i = 0; i < KEYS_NFIXED; i++)
		ck_assert_msg(!strncmp(keys_fixed((enum keys_id)i), ns, strlen(ns)), "%s",
		              keys_fixed((enum keys_id)i));
	ck_assert_str_eq(KEY_STAT_PROCESSED, "app:sidekiq:production:stat:processed");
	char *built[] = {keys_queue("q"),
	                 keys_working("h", 2),
	                 keys_process("h"),
	                 keys_work("h"),
	                 keys_workers("h"),
	                 keys_signals("h"),
	                 keys_node("h"),
	                 keys_lost("j"),
	                 keys_cron("c"),
	                 keys_daemon("d"),
	                 keys_daemon_epoch("d"),
	                 keys_daemon_runid("d"),
	                 keys_daemon_settle("d"),
	                 keys_daemon_cooldown("d", "h"),
	                 keys_stat_daily(KEY_STAT_FAILED, 0)};
	for (size_t i = 0; i < sizeof(built) / sizeof(*built); i++) {
		ck_assert_msg(!strncmp(built[i], ns, strlen(ns)), "%s", built[i]);
		ck_assert_msg(strncmp(built[i] + strlen(ns), ns, strlen(ns)), "twice: %s",
		              built[i]);
		free(built[i]);
	}
	expect(keys_signals("h:1:ab"), "app:sidekiq:production:h:1:ab-signals");
	expect(keys_stat_daily(KEY_STAT_PROCESSED, 86400),
	       "app:sidekiq:production:stat:processed:1970-01-02");
	ck_assert_str_eq(keys_strip("app:sidekiq:production:queue:x"), "queue:x");
	ck_assert_str_eq(keys_strip("other:queue:x"), "other:queue:x");
}
END_TEST

START_TEST(test_pattern_escapes_namespace)
{
	keys_set_namespace("a[1]*");
	expect(keys_working_pattern("h?"), "a\\[1\\]\\*:forq:working:h\\?:*");
}
END_TEST

START_TEST(test_namespace_validation)
{
	char big[KEYS_NAMESPACE_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert(keys_namespace_is_valid("app:sidekiq:production"));
	ck_assert(!keys_namespace_is_valid(""));
	ck_assert(!keys_namespace_is_valid("a b"));
	ck_assert(!keys_namespace_is_valid(big));
	big[KEYS_NAMESPACE_MAX] = '\0';
	ck_assert(keys_namespace_is_valid(big));
	/* the longest namespace still fits a unique lock key */
	ck_assert_int_ge(KEYS_UNIQUE_LOCK_SIZE,
	                 KEYS_NAMESPACE_MAX + 1 + (int)strlen("forq:unique:") + 40 + 1);
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_no_namespace);
	tcase_add_test(tc, test_every_key_is_namespaced);
	tcase_add_test(tc, test_pattern_escapes_namespace);
	tcase_add_test(tc, test_namespace_validation);
	suite_add_tcase(s, tc);
	return s;
}
