/* Unit tests for hostport (http_listen's address) and health (the rule
 * `forq health` and /healthz share). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "suite.h"
#include "health.h"
#include "hostport.h"

static char err[512];

START_TEST(test_ipv4_and_ipv6)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64];
	ck_assert_int_eq(hostport_parse("127.0.0.1:9292", &ss, &len, err, sizeof(err)), 0);
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
	ck_assert_int_eq(v4->sin_family, AF_INET);
	ck_assert_int_eq(ntohs(v4->sin_port), 9292);
	ck_assert_int_eq(len, sizeof(*v4));
	ck_assert_str_eq(inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf)), "127.0.0.1");
	ck_assert_int_eq(hostport_parse("[::1]:1", &ss, &len, err, sizeof(err)), 0);
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
	ck_assert_int_eq(v6->sin6_family, AF_INET6);
	ck_assert_int_eq(ntohs(v6->sin6_port), 1);
	ck_assert_str_eq(inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf)), "::1");
	ck_assert_int_eq(hostport_parse("0.0.0.0:65535", &ss, &len, err, sizeof(err)), 0);
	ck_assert_int_eq(hostport_parse("[::]:80", &ss, &len, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_rejected)
{
	static const char *const bad[] = {
	    "",           "9292",        ":9292",           "localhost:9292", "127.0.0.1",
	    "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:92x",  "::1:9292",
	    "[::1]",      "[::1]9292",   "[127.0.0.1]:80",  "[::1:80",        "1.2.3.4.5:80",
	};
	struct sockaddr_storage ss;
	socklen_t len;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(hostport_parse(bad[i], &ss, &len, err, sizeof(err)) == -1, "%s",
		              bad[i]);
		ck_assert_msg(strstr(err, "ADDRESS:PORT"), "%s: %s", bad[i], err);
	}
}
END_TEST

START_TEST(test_health_rule)
{
	ck_assert(health_beat_is_fresh(100.0, 110.0, HEALTH_MAX_AGE));
	ck_assert(health_beat_is_fresh(100.0, 115.0, 15.0));
	ck_assert(!health_beat_is_fresh(100.0, 115.1, 15.0));
	ck_assert(!health_beat_is_fresh(0.0, 1.0, 15.0)); /* no beat yet */
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("hostport");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_ipv4_and_ipv6);
	tcase_add_test(tc, test_rejected);
	tcase_add_test(tc, test_health_rule);
	suite_add_tcase(s, tc);
	return s;
}
