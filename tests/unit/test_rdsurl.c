/* Unit tests for rdsurl: every accepted URL form with its fields, every
 * rejected one with its message (never containing the password, and never
 * leaving the password in the output struct), and redaction. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "rdsurl.h"

#define SECRET "s3cr3t"

static char err[512];

static struct rdsurl parse_ok(const char *url)
{
	struct rdsurl u;
	err[0] = '\0';
	ck_assert_msg(rdsurl_parse(url, &u, err, sizeof(err)) == 0, "%s: %s", url, err);
	return u;
}

static void expect_fields(const char *url, const char *host, int port, const char *path,
                          const char *user, const char *password, int db)
{
	struct rdsurl u = parse_ok(url);
	ck_assert_msg(!strcmp(u.host, host), "%s: host '%s'", url, u.host);
	ck_assert_msg(u.port == port, "%s: port %d", url, u.port);
	ck_assert_msg(!strcmp(u.path, path), "%s: path '%s'", url, u.path);
	ck_assert_msg(!strcmp(u.user, user), "%s: user '%s'", url, u.user);
	ck_assert_msg(!strcmp(u.password, password), "%s: password '%s'", url, u.password);
	ck_assert_msg(u.db == db, "%s: db %d", url, u.db);
}

START_TEST(test_tcp_forms)
{
	expect_fields("redis://localhost", "localhost", 6379, "", "", "", 0);
	expect_fields("redis://127.0.0.1:6380/2", "127.0.0.1", 6380, "", "", "", 2);
	expect_fields("redis://redis-1.example.com:1/", "redis-1.example.com", 1, "", "", "", 0);
	expect_fields("redis://h:65535/10000", "h", 65535, "", "", "", 10000);
	expect_fields("REDIS://Host_A", "Host_A", 6379, "", "", "", 0);
	expect_fields("redis://:" SECRET "@host:6379/0", "host", 6379, "", "", SECRET, 0);
	expect_fields("redis://app:" SECRET "@host/3", "host", 6379, "", "app", SECRET, 3);
	expect_fields("redis://app@host", "host", 6379, "", "app", "", 0);
	expect_fields("redis://app:@host", "host", 6379, "", "app", "", 0);
	expect_fields("redis://host?db=4", "host", 6379, "", "", "", 4);
	expect_fields("redis://host:7000/?password=" SECRET "&db=5", "host", 7000, "", "", SECRET,
	              5);
}
END_TEST

START_TEST(test_tls)
{
	struct rdsurl u = parse_ok("rediss://app:" SECRET "@redis.example.com/2");
	ck_assert(u.tls);
	ck_assert_int_eq(u.port, 6379);
	ck_assert_str_eq(u.host, "redis.example.com");
	ck_assert_str_eq(u.user, "app");
	ck_assert_int_eq(u.db, 2);
	ck_assert(!parse_ok("redis://host").tls);
	ck_assert(!parse_ok("unix:///tmp/s.sock").tls);
	expect_fields("rediss://[::1]:6380", "::1", 6380, "", "", "", 0);

	ck_assert_int_eq(rdsurl_set_tls(&u, "/ca.pem", "/c.pem", "/k.pem", err, sizeof(err)), 0);
	ck_assert_str_eq(u.tls_ca_file, "/ca.pem");
	ck_assert_str_eq(u.tls_key_file, "/k.pem");
	ck_assert_int_eq(rdsurl_set_tls(&u, NULL, NULL, "", err, sizeof(err)), 0);
	ck_assert_str_eq(u.tls_ca_file, "");
	ck_assert_int_eq(rdsurl_set_tls(&u, NULL, "/c.pem", NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "together"));
	char longp[600];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(rdsurl_set_tls(&u, longp, NULL, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "tls_ca_file"));
}
END_TEST

START_TEST(test_credentials_decoding)
{
	/* percent-escapes in user and password */
	expect_fields("redis://us%65r:p%40ss%3Aw%2Fd%25@host", "host", 6379, "", "user",
	              "p@ss:w/d%", 0);
	expect_fields("redis://:%e2%82%ac@host", "host", 6379, "", "", "\xe2\x82\xac", 0);
	/* unescaped '@', '/', ':' and '?' still end up in the password */
	expect_fields("redis://:p@ss/w:r?d@host:6390/1", "host", 6390, "", "", "p@ss/w:r?d", 1);
	/* '+' is not a space in URLs' user info */
	expect_fields("redis://:a+b@host", "host", 6379, "", "", "a+b", 0);
}
END_TEST

START_TEST(test_ipv6)
{
	expect_fields("redis://[::1]", "::1", 6379, "", "", "", 0);
	expect_fields("redis://[::1]:6380/4", "::1", 6380, "", "", "", 4);
	expect_fields("redis://u:" SECRET "@[2001:db8::2]:7000", "2001:db8::2", 7000, "", "u",
	              SECRET, 0);
	expect_fields("redis://[::ffff:10.0.0.1]/2", "::ffff:10.0.0.1", 6379, "", "", "", 2);
}
END_TEST

START_TEST(test_unix_forms)
{
	expect_fields("unix:///tmp/redis.sock", "", 6379, "/tmp/redis.sock", "", "", 0);
	expect_fields("unix:///tmp/redis.sock?db=2&password=" SECRET, "", 6379, "/tmp/redis.sock",
	              "", SECRET, 2);
	expect_fields("unix:///run/r.sock?password=a%26b&db=1", "", 6379, "/run/r.sock", "", "a&b",
	              1);
	expect_fields("unix://:" SECRET "@/var/run/redis.sock?db=1", "", 6379,
	              "/var/run/redis.sock", "", SECRET, 1);
	expect_fields("unix://app:" SECRET "@/s", "", 6379, "/s", "app", SECRET, 0);
	expect_fields("unix:///tmp/a@b.sock", "", 6379, "/tmp/a@b.sock", "", "", 0);
	expect_fields("unix:///tmp/x@/s.sock", "", 6379, "/tmp/x@/s.sock", "", "", 0);
	expect_fields("unix:///tmp/s?", "", 6379, "/tmp/s", "", "", 0);
}
END_TEST

/* A rejected URL: the message names the problem, holds no password and the
 * struct holds no password either. */
static void expect_error(const char *url, const char *needle)
{
	struct rdsurl u;
	memset(&u, 'x', sizeof(u));
	err[0] = '\0';
	ck_assert_msg(rdsurl_parse(url, &u, err, sizeof(err)) == -1, "accepted: %s", url);
	ck_assert_msg(strstr(err, needle) != NULL, "%s: '%s' lacks '%s'", url, err, needle);
	ck_assert_msg(strstr(err, SECRET) == NULL, "%s: password in '%s'", url, err);
	ck_assert_msg(strstr(err, "cr3") == NULL, "%s: password part in '%s'", url, err);
	ck_assert_str_eq(u.password, "");
}

START_TEST(test_errors)
{
	expect_error("", "empty");
	expect_error(NULL, "empty");
	expect_error("redis://", "no host");
	expect_error("redis://:" SECRET "@", "no host");
	expect_error("redis://:" SECRET "@:6379/0", "no host");
	expect_error("redis://:" SECRET "@/0", "no host");
	expect_error("redis://[]:6379", "no host");
	expect_error("redis://h o", "bad host");
	expect_error("redis://:" SECRET "@[::1", "unclosed '['");
	expect_error("redis://[zz::1]", "bad IPv6");
	expect_error("redis://[127.0.0.1]", "bad IPv6");
	expect_error("redis://[::1]x", "unexpected text");
	expect_error("redis://:" SECRET "@host:0", "bad port");
	expect_error("redis://host:65536", "bad port");
	expect_error("redis://host:99999999", "bad port");
	expect_error("redis://host:", "bad port");
	expect_error("redis://host:63a79", "bad port");
	expect_error("redis://host:-1", "bad port");
	expect_error("redis://host:+80", "bad port");
	expect_error("redis://:" SECRET "cr3@host:" SECRET, "bad port");
	expect_error("redis://host/10001", "bad db");
	expect_error("redis://host/-1", "bad db");
	expect_error("redis://host/x", "bad db");
	expect_error("redis://host/1/2", "bad db");
	expect_error("redis://host/ 1", "bad db");
	expect_error("redis://host/1?db=2", "db given twice");
	expect_error("redis://:" SECRET "@host?password=" SECRET, "password given twice");
	expect_error("redis://host?timeout=5", "unknown parameter");
	expect_error("redis://host?" SECRET, "unknown parameter");
	expect_error("redis://:a%zz" SECRET "@host", "bad password");
	expect_error("redis://:" SECRET "%4@host", "bad password");
	expect_error("redis://:" SECRET "%00@host", "bad password");
	expect_error("redis://u%g0:" SECRET "@host", "bad user");
	expect_error("http://host", "unknown Redis URL scheme");
	expect_error(SECRET "://host", "unknown Redis URL scheme");
	expect_error("localhost:6379", "must start with redis://, rediss://, unix://");
	expect_error(":" SECRET "@localhost", "must start with redis://, rediss://, unix://");
	expect_error("unix://", "empty");
	expect_error("unix://?db=1", "empty");
	expect_error("unix://tmp/redis.sock", "absolute");
	expect_error("unix:///tmp/s?db=x", "bad db");
	expect_error("unix:///tmp/s?db=", "bad db");
	expect_error("unix:///tmp/s?db=1&db=2", "db given twice");
	expect_error("unix:///tmp/s?foo=1", "unknown parameter");
	expect_error("unix:///tmp/s?password=%" SECRET, "bad password");
}
END_TEST

START_TEST(test_sentinel_forms)
{
	struct rdsurl u = parse_ok("redis+sentinel://s1:26380,[::1],s3.example.com/mymaster");
	ck_assert_int_eq(u.nsentinels, 3);
	ck_assert_str_eq(u.sentinels[0].host, "s1");
	ck_assert_int_eq(u.sentinels[0].port, 26380);
	ck_assert_str_eq(u.sentinels[1].host, "::1");
	ck_assert_int_eq(u.sentinels[1].port, 26379);
	ck_assert_str_eq(u.sentinels[2].host, "s3.example.com");
	ck_assert_int_eq(u.sentinels[2].port, 26379);
	ck_assert_str_eq(u.master_name, "mymaster");
	ck_assert_str_eq(u.host, "");
	ck_assert_int_eq(u.db, 0);
	ck_assert(!u.tls);
	ck_assert_str_eq(u.sentinel_password, "");

	u = parse_ok("rediss+sentinel://app:" SECRET "@h1:26379,h2:26379/my-master_1.x/3");
	ck_assert(u.tls);
	ck_assert_int_eq(u.nsentinels, 2);
	ck_assert_str_eq(u.user, "app");
	ck_assert_str_eq(u.password, SECRET);
	ck_assert_str_eq(u.master_name, "my-master_1.x");
	ck_assert_int_eq(u.db, 3);

	u = parse_ok("Redis+Sentinel://:" SECRET "@h/m?db=2");
	ck_assert_str_eq(u.password, SECRET);
	ck_assert_int_eq(u.db, 2);
	ck_assert_int_eq(u.nsentinels, 1);

	/* plain URLs carry no sentinels */
	u = parse_ok("redis://host:6379/0");
	ck_assert_int_eq(u.nsentinels, 0);
	ck_assert_str_eq(u.master_name, "");
}
END_TEST

START_TEST(test_sentinel_errors)
{
	char url[2048];
	size_t k;
	expect_error("redis+sentinel://", "no host");
	expect_error("redis+sentinel://:" SECRET "@h1,/m", "no host");
	expect_error("redis+sentinel://h1:0/m", "bad port");
	expect_error("redis+sentinel://:" SECRET "@h1:26379", "master name");
	expect_error("redis+sentinel://h1/", "master name");
	expect_error("redis+sentinel://h1/m!x", "master name");
	expect_error("redis+sentinel://h1/m/x", "bad db");
	expect_error("redis+sentinel://h1/m/1?db=2", "db given twice");
	expect_error("redis+sentinel://h1/m?x=1", "unknown parameter");
	expect_error("redis://h1,h2:6379", "unexpected text");
	k = (size_t)snprintf(url, sizeof(url), "redis+sentinel://:" SECRET "@h0");
	for (int i = 1; i <= RDSURL_SENTINELS_MAX; i++)
		k += (size_t)snprintf(url + k, sizeof(url) - k, ",h%d", i);
	snprintf(url + k, sizeof(url) - k, "/m");
	expect_error(url, "more than");
}
END_TEST

START_TEST(test_length_limits)
{
	char url[1024], long_pw[300];
	memset(long_pw, 'p', 256);
	long_pw[256] = '\0';
	snprintf(url, sizeof(url), "redis://:%s@host", long_pw);
	expect_error(url, "too long");
	long_pw[255] = '\0'; /* 255 bytes + NUL fits */
	snprintf(url, sizeof(url), "redis://:%s@host", long_pw);
	struct rdsurl u = parse_ok(url);
	ck_assert_uint_eq(strlen(u.password), 255);

	char path[200];
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	snprintf(url, sizeof(url), "unix://%s", path);
	u = parse_ok(url);
	ck_assert_uint_eq(strlen(u.path), 107);
	path[107] = 'a';
	path[108] = '\0';
	snprintf(url, sizeof(url), "unix://%s", path);
	expect_error(url, "longer than 107 bytes");

	char host[300];
	memset(host, 'h', 256);
	host[256] = '\0';
	snprintf(url, sizeof(url), "redis://%s:1", host);
	expect_error(url, "bad host");

	/* small or missing error buffers */
	char small[6];
	ck_assert_int_eq(rdsurl_parse("redis://", &u, small, sizeof(small)), -1);
	ck_assert_str_eq(small, "Redis");
	ck_assert_int_eq(rdsurl_parse("redis://", &u, NULL, 0), -1);
}
END_TEST

static void expect_redacted(const char *url, const char *want)
{
	char out[512];
	rdsurl_redact(url, out, sizeof(out));
	ck_assert_msg(!strcmp(out, want), "%s -> '%s', want '%s'", url ? url : "(null)", out, want);
}

START_TEST(test_redact)
{
	expect_redacted("redis://:" SECRET "@host:6379/0", "redis://:***@host:6379/0");
	expect_redacted("redis://app:" SECRET "@host", "redis://app:***@host");
	expect_redacted("redis://app:p%40" SECRET "@[::1]:6380/2", "redis://app:***@[::1]:6380/2");
	expect_redacted("redis://:p@ss/w:" SECRET "@host/1", "redis://:***@host/1");
	expect_redacted("rediss://:" SECRET "@host", "rediss://:***@host");
	expect_redacted("REDIS://:" SECRET "@host", "REDIS://:***@host");
	expect_redacted("redis://host:" SECRET "@x", "redis://host:***@x");
	expect_redacted("unix:///tmp/s.sock?db=2&password=" SECRET,
	                "unix:///tmp/s.sock?db=2&password=***");
	expect_redacted("unix:///tmp/s.sock?password=" SECRET "&db=2",
	                "unix:///tmp/s.sock?password=***&db=2");
	expect_redacted("unix://:" SECRET "@/tmp/s?password=" SECRET,
	                "unix://:***@/tmp/s?password=***");
	expect_redacted("redis://host/0?password=a@" SECRET, "redis://host/0?password=***");
	/* found by fuzzing: a '?' inside a password does not end it */
	expect_redacted("redis://h?password=a?" SECRET, "redis://h?password=***");
	expect_redacted("unix:///s?password=a?" SECRET, "unix:///s?password=***");
	expect_redacted("redis://u@h/?x@h/?password=" SECRET, "redis://u@h/?x@h/?password=***");
	expect_redacted("user:" SECRET "@host", "user:***@host");
	expect_redacted("redis+sentinel://app:" SECRET "@h1:26379,h2:26380/mymaster/1",
	                "redis+sentinel://app:***@h1:26379,h2:26380/mymaster/1");
	expect_redacted("rediss+sentinel://:" SECRET "@h1/m?password=" SECRET,
	                "rediss+sentinel://:***@h1/m?password=***");
	/* nothing to hide */
	expect_redacted("redis://app@host", "redis://app@host");
	expect_redacted("redis://app@host:6379/0", "redis://app@host:6379/0");
	expect_redacted("redis://app:@host", "redis://app:@host");
	expect_redacted("redis://host:6379/0", "redis://host:6379/0");
	expect_redacted("redis://[::1]:6379", "redis://[::1]:6379");
	expect_redacted("unix:///tmp/a@b:c.sock", "unix:///tmp/a@b:c.sock");
	expect_redacted("unix:///tmp/s?password=", "unix:///tmp/s?password=");
	expect_redacted("unix:///tmp/mypassword=x", "unix:///tmp/mypassword=x");
	expect_redacted("", "");
	expect_redacted(NULL, "");
}
END_TEST

START_TEST(test_redact_truncates_safely)
{
	char out[12];
	memset(out, 'z', sizeof(out));
	rdsurl_redact("redis://:" SECRET "@host", out, sizeof(out));
	ck_assert_str_eq(out, "redis://:**");
	memset(out, 'z', sizeof(out));
	rdsurl_redact("redis://:" SECRET "@host", out, 1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(out[1], 'z');
	rdsurl_redact("redis://:" SECRET "@host", out, 0); /* writes nothing */
	ck_assert_int_eq(out[1], 'z');
	rdsurl_redact("redis://x", NULL, 10);
}
END_TEST

/* Every URL of the parse tests, redacted, parses to the same place and
 * shows no password. */
START_TEST(test_redacted_urls_hide_every_password)
{
	static const char *urls[] = {
	    "redis://:" SECRET "@host:6379/0",
	    "redis://app:" SECRET "@host/3",
	    "redis://u:" SECRET "@[2001:db8::2]:7000",
	    "unix:///tmp/redis.sock?db=2&password=" SECRET,
	    "unix://:" SECRET "@/var/run/redis.sock?db=1",
	    "redis://host:7000/?password=" SECRET "&db=5",
	    "redis+sentinel://u:" SECRET "@h1:26379,[::1]:26380/mymaster/2",
	    "rediss+sentinel://h1/mymaster?password=" SECRET,
	    "redis+sentinel://:p@ss?/" SECRET "@h1:26379/m/1",
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char out[256];
		struct rdsurl a = parse_ok(urls[i]), b;
		rdsurl_redact(urls[i], out, sizeof(out));
		ck_assert_msg(strstr(out, SECRET) == NULL, "%s -> %s", urls[i], out);
		ck_assert_int_eq(rdsurl_parse(out, &b, err, sizeof(err)), 0);
		ck_assert_str_eq(a.host, b.host);
		ck_assert_str_eq(a.path, b.path);
		ck_assert_int_eq(a.port, b.port);
		ck_assert_int_eq(a.db, b.db);
		ck_assert_str_eq(b.password, "***");
		ck_assert_int_eq(a.nsentinels, b.nsentinels);
		for (int k = 0; k < a.nsentinels; k++) {
			ck_assert_str_eq(a.sentinels[k].host, b.sentinels[k].host);
			ck_assert_int_eq(a.sentinels[k].port, b.sentinels[k].port);
		}
		ck_assert_str_eq(a.master_name, b.master_name);
		ck_assert_int_eq(a.tls, b.tls);
	}
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("rdsurl");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_tcp_forms);
	tcase_add_test(tc, test_tls);
	tcase_add_test(tc, test_credentials_decoding);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_unix_forms);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_length_limits);
	tcase_add_test(tc, test_sentinel_forms);
	tcase_add_test(tc, test_sentinel_errors);
	suite_add_tcase(s, tc);
	tc = tcase_create("redact");
	tcase_add_test(tc, test_redact);
	tcase_add_test(tc, test_redact_truncates_safely);
	tcase_add_test(tc, test_redacted_urls_hide_every_password);
	suite_add_tcase(s, tc);
	return s;
}
