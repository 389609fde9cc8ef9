/* Unit tests for config: built-in defaults, parsing [forq] from strings,
 * every class of error with its "file:line" position, overrides applied by
 * config_load, and reading real files. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suite.h"
#include "config.h"
#include "rdsurl.h"

static struct config *cfg;
static struct config_error err;

static void setup(void)
{
	cfg = config_new();
	memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
	config_free(cfg);
	cfg = NULL;
}

static int parse(const char *text)
{
	return config_parse_string(cfg, text, "t.ini", &err);
}

/* Parses text into a fresh config and checks the error's line and message. */
static void expect_error(const char *text, int line, const char *needle)
{
	struct config *c = config_new();
	struct config_error e;
	char where[64];
	memset(&e, 0, sizeof(e));
	snprintf(where, sizeof(where), "t.ini:%d", line);
	ck_assert_msg(config_parse_string(c, text, "t.ini", &e) == -1, "no error for text:\n%s",
	              text);
	ck_assert_msg(!strcmp(e.where, where), "error at '%s', expected '%s' for text:\n%s",
	              e.where, where, text);
	ck_assert_msg(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s' for text:\n%s", e.msg,
	              needle, text);
	config_free(c);
}

/* Writes text to a fresh temporary file; path must hold 64 bytes. */
static void write_temp(char *path, const char *text)
{
	snprintf(path, 64, "/tmp/forq-test-config-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	size_t len = strlen(text);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

START_TEST(test_defaults)
{
	ck_assert_ptr_null(cfg->path);
	ck_assert_str_eq(cfg->redis_url, "redis://127.0.0.1:6379/0");
	ck_assert_int_eq(cfg->processes, 1);
	ck_assert(!cfg->processes_auto);
	ck_assert(!cfg->prefork);
	ck_assert_uint_eq(cfg->nqueues, 1);
	ck_assert_str_eq(cfg->queues[0].name, "default");
	ck_assert_int_eq(cfg->queues[0].weight, 1);
	ck_assert(!cfg->queues_weighted);
	ck_assert_double_eq(cfg->shutdown_timeout, 25.0);
	ck_assert_ptr_null(cfg->tag);
	ck_assert_uint_eq(cfg->nplugins, 0);
	ck_assert_ptr_null(cfg->user);
	ck_assert_ptr_null(cfg->environment);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_TEXT);
	ck_assert_ptr_null(cfg->pidfile);
}
END_TEST

START_TEST(test_empty_text_keeps_defaults)
{
	ck_assert_int_eq(parse(""), 0);
	ck_assert_int_eq(parse("\n\n; only a comment\n"), 0);
	ck_assert_int_eq(parse("[forq]\n"), 0);
	ck_assert_int_eq(cfg->processes, 1);
	ck_assert_str_eq(cfg->queues[0].name, "default");
}
END_TEST

START_TEST(test_full_section)
{
	const char *text = "[forq]\n"
	                   "redis_url = redis://:secret@10.0.0.5:6380/2\n"
	                   "processes = 4\n"
	                   "prefork = true\n"
	                   "queues = critical:3, default:1\n"
	                   "shutdown_timeout = 12.5\n"
	                   "tag = billing\n"
	                   "plugins = /usr/lib/forq/a.so, /usr/lib/forq/b.so\n"
	                   "user = forq\n"
	                   "environment = production\n"
	                   "log_level = debug\n"
	                   "log_format = json\n"
	                   "pidfile = /run/forq.pid\n";
	ck_assert_msg(parse(text) == 0, "%s: %s", err.where, err.msg);
	ck_assert_str_eq(cfg->redis_url, "redis://:secret@10.0.0.5:6380/2");
	ck_assert_int_eq(cfg->processes, 4);
	ck_assert(!cfg->processes_auto);
	ck_assert(cfg->prefork);
	ck_assert_uint_eq(cfg->nqueues, 2);
	ck_assert_str_eq(cfg->queues[0].name, "critical");
	ck_assert_int_eq(cfg->queues[0].weight, 3);
	ck_assert_str_eq(cfg->queues[1].name, "default");
	ck_assert_int_eq(cfg->queues[1].weight, 1);
	ck_assert(cfg->queues_weighted);
	ck_assert_double_eq_tol(cfg->shutdown_timeout, 12.5, 1e-9);
	ck_assert_str_eq(cfg->tag, "billing");
	ck_assert_uint_eq(cfg->nplugins, 2);
	ck_assert_str_eq(cfg->plugins[0], "/usr/lib/forq/a.so");
	ck_assert_str_eq(cfg->plugins[1], "/usr/lib/forq/b.so");
	ck_assert_str_eq(cfg->user, "forq");
	ck_assert_str_eq(cfg->environment, "production");
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_JSON);
	ck_assert_str_eq(cfg->pidfile, "/run/forq.pid");
	ck_assert_ptr_null(cfg->path); /* only config_parse_file records a path */
}
END_TEST

START_TEST(test_unix_socket_url)
{
	ck_assert_int_eq(parse("[forq]\nredis_url = unix:///run/redis.sock?db=3\n"), 0);
	ck_assert_str_eq(cfg->redis_url, "unix:///run/redis.sock?db=3");
}
END_TEST

START_TEST(test_processes_auto)
{
	ck_assert_int_eq(parse("[forq]\nprocesses = auto\n"), 0);
	ck_assert(cfg->processes_auto);
}
END_TEST

START_TEST(test_processes_number_clears_auto)
{
	char e[512];
	ck_assert_int_eq(config_set(cfg, NULL, "processes", "auto", e, sizeof(e)), 0);
	ck_assert(cfg->processes_auto);
	ck_assert_int_eq(config_set(cfg, "forq", "processes", "7", e, sizeof(e)), 0);
	ck_assert(!cfg->processes_auto);
	ck_assert_int_eq(cfg->processes, 7);
}
END_TEST

START_TEST(test_processes_range)
{
	ck_assert_int_eq(parse("[forq]\nprocesses = 1024\n"), 0);
	ck_assert_int_eq(cfg->processes, 1024);
	expect_error("[forq]\nprocesses = 0\n", 2, "processes");
	expect_error("[forq]\nprocesses = 1025\n", 2, "processes");
	expect_error("[forq]\nprocesses = abc\n", 2, "processes");
	expect_error("[forq]\nprocesses = -1\n", 2, "processes");
	expect_error("[forq]\nprocesses = 2.5\n", 2, "processes");
	expect_error("[forq]\nprocesses = 4x\n", 2, "processes");
	expect_error("[forq]\nprocesses =\n", 2, "processes");
	expect_error("[forq]\nprocesses = 99999999999999999999\n", 2, "processes");
}
END_TEST

START_TEST(test_weighted_queues_keep_order)
{
	ck_assert_int_eq(parse("[forq]\nqueues = critical:3, default:1\n"), 0);
	ck_assert(cfg->queues_weighted);
	ck_assert_uint_eq(cfg->nqueues, 2);
	ck_assert_str_eq(cfg->queues[0].name, "critical");
	ck_assert_int_eq(cfg->queues[0].weight, 3);
	ck_assert_str_eq(cfg->queues[1].name, "default");
	ck_assert_int_eq(cfg->queues[1].weight, 1);
}
END_TEST

START_TEST(test_unweighted_queues_strict_order)
{
	ck_assert_int_eq(parse("[forq]\nqueues = low, high,mid\n"), 0);
	ck_assert(!cfg->queues_weighted);
	ck_assert_uint_eq(cfg->nqueues, 3);
	ck_assert_str_eq(cfg->queues[0].name, "low");
	ck_assert_str_eq(cfg->queues[1].name, "high");
	ck_assert_str_eq(cfg->queues[2].name, "mid");
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(cfg->queues[i].weight, 1);
}
END_TEST

START_TEST(test_all_weights_one_is_unweighted)
{
	/* Sidekiq 6.4: any explicit weight, even 1, makes the order random */
	ck_assert_int_eq(parse("[forq]\nqueues = a:1, b:1\n"), 0);
	ck_assert(cfg->queues_weighted);
	ck_assert_uint_eq(cfg->nqueues, 2);
}
END_TEST

START_TEST(test_queues_replace_not_append)
{
	char e[512];
	ck_assert_int_eq(config_set(cfg, NULL, "queues", "a:5, b", e, sizeof(e)), 0);
	ck_assert(cfg->queues_weighted);
	ck_assert_int_eq(config_set(cfg, NULL, "queues", "c", e, sizeof(e)), 0);
	ck_assert_uint_eq(cfg->nqueues, 1);
	ck_assert_str_eq(cfg->queues[0].name, "c");
	ck_assert(!cfg->queues_weighted);
}
END_TEST

START_TEST(test_bad_queue_weight)
{
	expect_error("[forq]\nqueues = a:0\n", 2, "weight");
	expect_error("[forq]\nqueues = a:x\n", 2, "weight");
	expect_error("[forq]\nqueues = a:\n", 2, "weight");
	expect_error("[forq]\nqueues = a:-2\n", 2, "weight");
	expect_error("[forq]\nqueues = a:1000001\n", 2, "weight");
	expect_error("[forq]\nqueues = ok:2, bad:1.5\n", 2, "queue 'bad'");
}
END_TEST

START_TEST(test_bad_queue_name)
{
	expect_error("[forq]\nqueues = a/b\n", 2, "bad queue name 'a/b'");
	expect_error("[forq]\nqueues = :3\n", 2, "bad queue name");
	expect_error("[forq]\nqueues = ,\n", 2, "at least one queue");
	expect_error("[forq]\nqueues =\n", 2, "at least one queue");
}
END_TEST

START_TEST(test_duplicate_queue)
{
	expect_error("[forq]\nqueues = a, b, a\n", 2, "queue 'a' listed twice");
	expect_error("[forq]\nqueues = a:2, a:3\n", 2, "listed twice");
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_error("[forq]\nprocesses = 2\nbogus = 1\n", 3, "unknown key 'bogus'");
}
END_TEST

START_TEST(test_unknown_section)
{
	expect_error("[forq]\nprocesses = 2\n[bogus]\nx = 1\n", 3, "unknown section [bogus]");
	expect_error("[bogus]\n", 1, "unknown section [bogus]");
	expect_error("[forq]\nprocesses = 2\n\n[bogus]\n", 4, "unknown section [bogus]");
	expect_error("  [ other ]  \n[forq]\n", 1, "unknown section [other]");
}
END_TEST

START_TEST(test_key_outside_section)
{
	expect_error("processes = 2\n[forq]\n", 1, "outside any section");
	expect_error("; header\n\ntag = x\n", 3, "'tag' is outside any section");
}
END_TEST

START_TEST(test_duplicate_key)
{
	expect_error("[forq]\nprocesses = 2\ntag = a\nprocesses = 3\n", 4,
	             "duplicate key 'processes'");
}
END_TEST

START_TEST(test_duplicate_section)
{
	expect_error("[forq]\nprocesses = 2\n[forq]\ntag = x\n", 3, "[forq] appears twice");
	expect_error("[forq]\n[forq]\n", 2, "appears twice");
}
END_TEST

START_TEST(test_bool_values)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
	static const char *const no[] = {"false", "no", "off", "0", "False"};
	char e[512];
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		ck_assert_int_eq(config_set(cfg, NULL, "prefork", "false", e, sizeof(e)), 0);
		ck_assert_int_eq(config_set(cfg, NULL, "prefork", yes[i], e, sizeof(e)), 0);
		ck_assert_msg(cfg->prefork, "'%s' is not true", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		ck_assert_int_eq(config_set(cfg, NULL, "prefork", "true", e, sizeof(e)), 0);
		ck_assert_int_eq(config_set(cfg, NULL, "prefork", no[i], e, sizeof(e)), 0);
		ck_assert_msg(!cfg->prefork, "'%s' is not false", no[i]);
	}
}
END_TEST

START_TEST(test_bad_bool)
{
	expect_error("[forq]\nprefork = maybe\n", 2, "prefork must be true or false, not 'maybe'");
	expect_error("[forq]\nprefork = 2\n", 2, "prefork must be true or false");
	expect_error("[forq]\nprefork =\n", 2, "prefork must be true or false");
}
END_TEST

START_TEST(test_shutdown_timeout_range)
{
	ck_assert_int_eq(parse("[forq]\nshutdown_timeout = 0\n"), 0);
	ck_assert_double_eq(cfg->shutdown_timeout, 0.0);
	expect_error("[forq]\nshutdown_timeout = -1\n", 2, "shutdown_timeout");
	expect_error("[forq]\nshutdown_timeout = 3601\n", 2, "shutdown_timeout");
	expect_error("[forq]\nshutdown_timeout = soon\n", 2, "shutdown_timeout");
	expect_error("[forq]\nshutdown_timeout = nan\n", 2, "shutdown_timeout");
}
END_TEST

START_TEST(test_redis_url_schemes)
{
	expect_error("[forq]\nredis_url = http://host/\n", 2, "rediss://, unix:// or");
	expect_error("[forq]\nredis_url = 127.0.0.1:6379\n", 2, "rediss://, unix:// or");
}
END_TEST

START_TEST(test_tls_keys)
{
	struct rdsurl u;
	char e[512];
	ck_assert_int_eq(parse("[forq]\nredis_url = rediss://u:pw@h:6380/1\n"
			       "tls_ca_file = /etc/ca.pem\ntls_cert_file = /etc/c.pem\n"
			       "tls_key_file = /etc/k.pem\n"),
			 0);
	ck_assert_int_eq(config_rdsurl(cfg, &u, e, sizeof(e)), 0);
	ck_assert(u.tls);
	ck_assert_int_eq(u.port, 6380);
	ck_assert_str_eq(u.tls_ca_file, "/etc/ca.pem");
	ck_assert_str_eq(u.tls_cert_file, "/etc/c.pem");
	ck_assert_str_eq(u.tls_key_file, "/etc/k.pem");
	ck_assert_int_eq(parse("[forq]\ntls_key_file =\n"), 0);
	ck_assert_int_eq(config_rdsurl(cfg, &u, e, sizeof(e)), -1);
	ck_assert_ptr_nonnull(strstr(e, "together"));
	ck_assert_int_eq(parse("[forq]\nredis_url = redis://h/x\n"), 0);
	ck_assert_int_eq(config_rdsurl(cfg, &u, e, sizeof(e)), -1);
	ck_assert_ptr_nonnull(strstr(e, "redis_url: bad db"));
}
END_TEST

START_TEST(test_sentinel_urls)
{
	ck_assert_int_eq(parse("[forq]\nredis_url = redis+sentinel://s1,s2:26380/mymaster\n"), 0);
	ck_assert_str_eq(cfg->redis_url, "redis+sentinel://s1,s2:26380/mymaster");
	ck_assert_int_eq(parse("[forq]\nredis_url = rediss+sentinel://s1/m\n"), 0);
}
END_TEST

START_TEST(test_sentinel_and_replicas)
{
	ck_assert_ptr_null(cfg->sentinel_password);
	ck_assert_int_eq(cfg->min_replicas, 0);
	ck_assert_double_eq(cfg->min_replicas_timeout, 1.0);
	ck_assert_int_eq(parse("[forq]\nsentinel_password = s3cr3t\nmin_replicas = 2\n"
			       "min_replicas_timeout = 0.25\n"), 0);
	ck_assert_str_eq(cfg->sentinel_password, "s3cr3t");
	ck_assert_int_eq(cfg->min_replicas, 2);
	ck_assert_double_eq(cfg->min_replicas_timeout, 0.25);
	expect_error("[forq]\nmin_replicas = -1\n", 2, "min_replicas must be a whole number");
	expect_error("[forq]\nmin_replicas = 1.5\n", 2, "min_replicas");
	expect_error("[forq]\nmin_replicas = 101\n", 2, "min_replicas");
	expect_error("[forq]\nmin_replicas_timeout = 0\n", 2, "min_replicas_timeout");
	expect_error("[forq]\nmin_replicas_timeout = 3\n", 2, "min_replicas_timeout");
}
END_TEST

START_TEST(test_bad_log_settings)
{
	expect_error("[forq]\nlog_format = xml\n", 2, "log_format must be text or json, not 'xml'");
	expect_error("[forq]\nlog_level = loud\n", 2, "log_level must be");
	ck_assert_int_eq(parse("[forq]\nlog_level = warning\nlog_format = JSON\n"), 0);
	ck_assert_int_eq(cfg->log_level, LOG_WARN);
	ck_assert_int_eq(cfg->log_format, LOG_FORMAT_JSON);
}
END_TEST

START_TEST(test_recycling_keys)
{
	ck_assert_int_eq(cfg->max_rss_kb, 0);
	ck_assert_int_eq(cfg->max_jobs, 0);
	ck_assert_ptr_null(cfg->log_file);
	ck_assert_int_eq(parse("[forq]\nmax_rss = 300M\nmax_jobs = 1000\nmax_rss_kind = PSS\n"
			       "log_file = /var/log/forq/forq.log\n"), 0);
	ck_assert_int_eq(cfg->max_rss_kb, 300L * 1024);
	ck_assert_int_eq(cfg->max_jobs, 1000);
	ck_assert_int_eq(cfg->max_rss_kind, CONFIG_PSS);
	ck_assert_str_eq(cfg->log_file, "/var/log/forq/forq.log");
	ck_assert_int_eq(parse("[forq]\nmax_rss = 2g\n"), 0);
	ck_assert_int_eq(cfg->max_rss_kb, 2L << 20);
	ck_assert_int_eq(parse("[forq]\nmax_rss = 4096\n"), 0); /* no suffix: KiB */
	ck_assert_int_eq(cfg->max_rss_kb, 4096);
	expect_error("[forq]\nmax_rss = 300MB\n", 2, "max_rss must be 0 or a size");
	expect_error("[forq]\nmax_rss = -1M\n", 2, "max_rss must be 0 or a size");
	expect_error("[forq]\nmax_jobs = -3\n", 2, "max_jobs must be a whole number");
	expect_error("[forq]\nmax_rss_kind = uss\n", 2, "max_rss_kind must be rss or pss");
}
END_TEST

START_TEST(test_syntax_error)
{
	expect_error("[forq]\nprocesses = 2\nthis line has no equals\n", 3, "syntax error");
	expect_error("[forq\nprocesses = 2\n", 1, "syntax error");
}
END_TEST

START_TEST(test_line_too_long)
{
	char text[1024];
	char value[600];
	memset(value, 'a', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	snprintf(text, sizeof(text), "[forq]\ntag = %s\nprocesses = 0\n", value);
	expect_error(text, 2, "line longer than");
	/* the line after an over-long one is still counted as the next line */
	snprintf(text, sizeof(text), "[forq]\n; %s\nbogus = 1\n", value);
	expect_error(text, 2, "line longer than");
	snprintf(text, sizeof(text), "[forq]\nbogus = 1\n; %s\n", value);
	expect_error(text, 2, "unknown key 'bogus'");
}
END_TEST

START_TEST(test_first_error_wins)
{
	/* a handler error before a syntax error */
	expect_error("[forq]\nbogus = 1\nprocesses = 0\nno equals here\n", 2,
	             "unknown key 'bogus'");
	/* a syntax error before handler errors */
	expect_error("[forq]\nno equals here\nbogus = 1\nprocesses = 0\n", 2, "syntax error");
	/* a bad value before an unknown section */
	expect_error("[forq]\nprocesses = 0\n[bogus]\n", 2, "processes");
	/* an unknown section before an unknown key */
	expect_error("[bogus]\n[forq]\nnope = 1\n", 1, "unknown section [bogus]");
}
END_TEST

START_TEST(test_comments)
{
	const char *text = "; leading comment\n"
	                   "# hash comment\n"
	                   "\n"
	                   "[forq]   ; section comment\n"
	                   "processes = 3 ; inline comment\n"
	                   "# processes = 9\n"
	                   "; tag = commented\n"
	                   "queues = a:2, b ; weights\n";
	ck_assert_msg(parse(text) == 0, "%s: %s", err.where, err.msg);
	ck_assert_int_eq(cfg->processes, 3);
	ck_assert_ptr_null(cfg->tag);
	ck_assert_uint_eq(cfg->nqueues, 2);
	ck_assert_str_eq(cfg->queues[1].name, "b");
}
END_TEST

START_TEST(test_whitespace_and_crlf)
{
	ck_assert_int_eq(parse("[forq]\r\n  processes=5\r\ntag =  spaced  \r\n"), 0);
	ck_assert_int_eq(cfg->processes, 5);
	ck_assert_str_eq(cfg->tag, "spaced");
}
END_TEST

START_TEST(test_config_set_errors)
{
	char e[512];
	ck_assert_int_eq(config_set(cfg, "job", "exec", "/bin/true", e, sizeof(e)), -1);
	ck_assert_ptr_nonnull(strstr(e, "unknown section [job]"));
	ck_assert_int_eq(config_set(cfg, NULL, "nope", "1", e, sizeof(e)), -1);
	ck_assert_ptr_nonnull(strstr(e, "unknown key 'nope'"));
	ck_assert_int_eq(config_set(cfg, NULL, "tag", "", e, sizeof(e)), 0);
	ck_assert_ptr_null(cfg->tag);
}
END_TEST

START_TEST(test_load_overrides_win)
{
	char path[64];
	write_temp(path, "[forq]\nprocesses = 2\ntag = file\n");
	const struct config_override ov[] = {
	    {"processes", "4", "--processes"},
	};
	struct config *c = config_load(path, ov, 1, &err);
	ck_assert_msg(c != NULL, "%s: %s", err.where, err.msg);
	ck_assert_int_eq(c->processes, 4);
	ck_assert_str_eq(c->tag, "file"); /* untouched by overrides */
	ck_assert_str_eq(c->path, path);
	config_free(c);
	unlink(path);
}
END_TEST

START_TEST(test_load_later_override_wins)
{
	const struct config_override ov[] = {
	    {"processes", "3", "FORQ_PROCESSES"},
	    {"prefork", "true", "FORQ_PREFORK"},
	    {"processes", "5", "--processes"},
	    {"prefork", "false", "--no-prefork"},
	};
	struct config *c = config_load(NULL, ov, 4, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->processes, 5);
	ck_assert(!c->prefork);
	ck_assert_ptr_null(c->path);
	config_free(c);
}
END_TEST

START_TEST(test_load_without_file_or_overrides)
{
	struct config *c = config_load(NULL, NULL, 0, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->processes, 1);
	ck_assert_str_eq(c->queues[0].name, "default");
	config_free(c);
}
END_TEST

START_TEST(test_load_override_error_names_origin)
{
	const struct config_override ov[] = {
	    {"processes", "2", "FORQ_PROCESSES"},
	    {"processes", "0", "--processes"},
	};
	ck_assert_ptr_null(config_load(NULL, ov, 2, &err));
	ck_assert_str_eq(err.where, "--processes");
	ck_assert_ptr_nonnull(strstr(err.msg, "processes"));

	const struct config_override bad_key[] = {{"nope", "1", "FORQ_NOPE"}};
	ck_assert_ptr_null(config_load(NULL, bad_key, 1, &err));
	ck_assert_str_eq(err.where, "FORQ_NOPE");
	ck_assert_ptr_nonnull(strstr(err.msg, "unknown key 'nope'"));
}
END_TEST

START_TEST(test_load_file_error_names_line)
{
	char path[64], where[128];
	write_temp(path, "[forq]\nprocesses = 2\nprocesses = 3\n");
	const struct config_override ov[] = {{"processes", "4", "--processes"}};
	ck_assert_ptr_null(config_load(path, ov, 1, &err));
	snprintf(where, sizeof(where), "%s:3", path);
	ck_assert_str_eq(err.where, where);
	ck_assert_ptr_nonnull(strstr(err.msg, "duplicate key 'processes'"));
	unlink(path);
}
END_TEST

START_TEST(test_parse_file)
{
	char path[64];
	write_temp(path, "[forq]\nqueues = x:2, y\n");
	ck_assert_int_eq(config_parse_file(cfg, path, &err), 0);
	ck_assert_str_eq(cfg->path, path);
	ck_assert_uint_eq(cfg->nqueues, 2);
	ck_assert_str_eq(cfg->queues[0].name, "x");
	unlink(path);
}
END_TEST

START_TEST(test_parse_missing_file)
{
	const char *path = "/nonexistent/forq-test/forq.ini";
	ck_assert_int_eq(config_parse_file(cfg, path, &err), -1);
	ck_assert_str_eq(err.where, "/nonexistent/forq-test/forq.ini:0");
	ck_assert_ptr_nonnull(strstr(err.msg, "cannot read"));
	ck_assert_ptr_nonnull(strstr(err.msg, "No such file"));
	ck_assert_ptr_null(cfg->path);

	ck_assert_ptr_null(config_load(path, NULL, 0, &err));
	ck_assert_str_eq(err.where, "/nonexistent/forq-test/forq.ini:0");
}
END_TEST

START_TEST(test_queues_string)
{
	char *s = config_queues_string(cfg);
	ck_assert_str_eq(s, "default:1");
	free(s);
	ck_assert_int_eq(parse("[forq]\nqueues = critical:3, default:1\n"), 0);
	s = config_queues_string(cfg);
	ck_assert_str_eq(s, "critical:3, default:1");
	free(s);
	ck_assert_int_eq(parse("[forq]\nqueues = a,b\tc\n"), 0);
	s = config_queues_string(cfg);
	ck_assert_str_eq(s, "a:1, b:1, c:1");
	free(s);
}
END_TEST

START_TEST(test_job_sections)
{
	ck_assert_int_eq(parse("[forq]\n[job \"A\"]\nexec = /bin/x --a \"b c\" 'd \"e' f\\ g\n"
			       "timeout = 2.5\nretry = 3\n[job \"B\"]\nretry = 0\n"), 0);
	ck_assert_uint_eq(cfg->njobs, 2);
	const struct config_job *a = config_find_job(cfg, "A"), *b = config_find_job(cfg, "B");
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->argv[0], "/bin/x");
	ck_assert_str_eq(a->argv[1], "--a");
	ck_assert_str_eq(a->argv[2], "b c");
	ck_assert_str_eq(a->argv[3], "d \"e");
	ck_assert_str_eq(a->argv[4], "f g");
	ck_assert_ptr_null(a->argv[5]);
	ck_assert(a->timeout == 2.5);
	ck_assert_int_eq(a->retry, 3);
	ck_assert_ptr_null(b->argv);
	ck_assert_int_eq(b->retry, 0);
	ck_assert_ptr_null(config_find_job(cfg, "C"));
	expect_error("[job \"A\"]\n[job \"A\"]\n", 2, "appears twice");
	expect_error("[job \"A\"]\nexec = /a\nexec = /b\n", 3, "duplicate key 'exec'");
	expect_error("[job \"A\"]\ntimeout = -1\n", 2, "timeout must be");
	expect_error("[job \"A\"]\nretry = 1001\n", 2, "retry must be");
	expect_error("[job \"A\"]\nexec = /a \"open\n", 2, "unterminated");
	expect_error("[job \"A\"]\nexec =\n", 2, "empty command");
	expect_error("[job A]\n", 1, "bad section header");
	expect_error("[job \"\"]\n", 1, "bad section header");
}
END_TEST

START_TEST(test_unique_keys)
{
	ck_assert_int_eq(parse("[job \"A\"]\nunique = until_executed\nunique_ttl = 60\n"
			       "unique_args = 0, 2\n[job \"B\"]\n"), 0);
	const struct config_job *a = config_find_job(cfg, "A"), *b = config_find_job(cfg, "B");
	ck_assert_int_eq(a->unique, UNIQUE_UNTIL_EXECUTED);
	ck_assert(a->unique_ttl == 60.0);
	ck_assert_uint_eq(a->nunique_args, 2);
	ck_assert_int_eq(a->unique_args[0], 0);
	ck_assert_int_eq(a->unique_args[1], 2);
	ck_assert_int_eq(b->unique, UNIQUE_NONE);
	ck_assert(b->unique_ttl == 3600.0);
	ck_assert_uint_eq(b->nunique_args, 0);
	static const char *const types[] = {"none", "until_executing", "until_executed",
					    "while_executing", "until_and_while_executing",
					    "until_expired"};
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		enum config_unique u;
		ck_assert_int_eq(config_unique_parse(types[i], &u), 0);
		ck_assert_int_eq((int)u, (int)i);
		ck_assert_str_eq(config_unique_name(u), types[i]);
	}
	expect_error("[job \"A\"]\nunique = sometimes\n", 2, "unique must be");
	expect_error("[job \"A\"]\nunique_ttl = 0\n", 2, "unique_ttl must be");
	expect_error("[job \"A\"]\nunique_args = 1, x\n", 2, "'x' is not an argument position");
	expect_error("[job \"A\"]\nunique_args = 1, 1\n", 2, "listed twice");
	expect_error("[job \"A\"]\nunique_args = ,\n", 2, "must list argument positions");
	expect_error("[job \"A\"]\nunique = until_executed\nunique = none\n", 3, "duplicate key");
}
END_TEST

START_TEST(test_cron_sections)
{
	ck_assert_int_eq(parse("[forq]\n[cron \"nightly\"]\nschedule = 0 3 * * *\n"
			       "timezone = Europe/Berlin\nclass = InvoiceJob\nargs = [\"n\", 1]\n"
			       "queue = low\nretry = 5\ncatch_up = all\noverlap = forbid\n"
			       "[cron \"tick\"]\nschedule = @hourly\nclass = T\nretry = false\n"),
			 0);
	ck_assert_uint_eq(cfg->ncrons, 2);
	const struct config_cron *n = &cfg->crons[0], *t = &cfg->crons[1];
	ck_assert_str_eq(n->name, "nightly");
	ck_assert_int_eq(n->line, 2);
	ck_assert_str_eq(n->schedule, "0 3 * * *");
	ck_assert_str_eq(n->timezone, "Europe/Berlin");
	ck_assert_str_eq(n->job_class, "InvoiceJob");
	ck_assert_str_eq(n->args, "[\"n\", 1]");
	ck_assert_str_eq(n->queue, "low");
	ck_assert_str_eq(n->retry, "5");
	ck_assert_int_eq(n->catch_up, CATCH_UP_ALL);
	ck_assert(n->overlap_forbid);
	ck_assert_ptr_null(t->timezone);
	ck_assert_ptr_null(t->args);
	ck_assert_ptr_null(t->queue);
	ck_assert_str_eq(t->retry, "false");
	ck_assert_int_eq(t->catch_up, CATCH_UP_LATEST);
	ck_assert(!t->overlap_forbid);
	expect_error("[cron \"a\"]\nclass = A\n", 1, "needs a schedule");
	expect_error("[cron \"a\"]\nschedule = * * * * *\n", 1, "needs a class");
	expect_error("[forq]\n[cron \"a\"]\nschedule = @daily\nclass = A\nargs = {}\n", 2,
		     "[cron \"a\"]: args");
	expect_error("[cron \"a\"]\nschedule = @daily\nclass = A\ncatch_up = some\n", 4,
		     "catch_up must be");
	expect_error("[cron \"a\"]\noverlap = never\n", 2, "overlap must be");
	expect_error("[cron \"a\"]\nqueue = a b\n", 2, "bad queue name");
	expect_error("[cron \"a\"]\nretry = maybe\n", 2, "retry must be");
	expect_error("[cron \"a\"]\nbogus = 1\n", 2, "unknown key 'bogus' in [cron \"a\"]");
	expect_error("[cron \"a\"]\nschedule = @daily\nschedule = @hourly\n", 3, "duplicate key");
	expect_error("[cron \"a\"]\nschedule = @daily\nclass = A\n[cron \"a\"]\n", 4,
		     "appears twice");
	expect_error("[cron \"a b\"]\n", 1, "bad cron name");
}
END_TEST

START_TEST(test_daemon_sections)
{
	ck_assert_int_eq(parse("[daemon \"ingest\"]\nexec = /bin/sleep 100\n"
			       "checkin_timeout = 120\n[daemon \"helper\"]\nplugin = testplug_helper\n"
			       "scope = node\nstop_timeout = 3\n[forq]\ndaemon_ttl = 9\n"),
			 0);
	ck_assert_uint_eq(cfg->ndaemons, 2);
	const struct config_daemon *i = &cfg->daemons[0], *h = &cfg->daemons[1];
	ck_assert_str_eq(i->argv[0], "/bin/sleep");
	ck_assert_str_eq(i->argv[1], "100");
	ck_assert_ptr_null(i->plugin);
	ck_assert_int_eq(i->scope, DAEMON_SCOPE_CLUSTER);
	ck_assert(i->checkin_timeout == 120.0);
	ck_assert(i->stop_timeout == 10.0);
	ck_assert_str_eq(h->plugin, "testplug_helper");
	ck_assert_ptr_null(h->argv);
	ck_assert_int_eq(h->scope, DAEMON_SCOPE_NODE);
	ck_assert(h->checkin_timeout == 0.0);
	ck_assert(h->stop_timeout == 3.0);
	ck_assert(cfg->daemon_ttl == 9.0);
	ck_assert(cfg->daemon_renew == 10.0);
	ck_assert(cfg->daemon_acquire == 5.0);
	ck_assert_int_eq(parse("[daemon \"t\"]\nruby = Billing::Ticker\nargs = [1, \"a\"]\n"), 0);
	ck_assert_str_eq(cfg->daemons[2].plugin, CONFIG_RUBY_DAEMON_ENTRY);
	ck_assert_str_eq(cfg->daemons[2].ruby, "Billing::Ticker");
	ck_assert_str_eq(cfg->daemons[2].args, "[1, \"a\"]");
	expect_error("[daemon \"d\"]\nscope = cluster\n", 1, "exactly one of exec, plugin or ruby");
	expect_error("[daemon \"d\"]\nexec = /a\nplugin = p\n", 1, "exactly one of exec, plugin or ruby");
	expect_error("[daemon \"d\"]\nruby = A::B\nplugin = p\n", 3, "cannot both be set");
	expect_error("[daemon \"d\"]\nruby = A B\n", 2, "must name a Ruby class");
	expect_error("[daemon \"d\"]\nruby = A\nargs = {}\n", 3, "args:");
	expect_error("[daemon \"d\"]\nexec = /a\nargs = []\n", 1, "args is for ruby");
	expect_error("[daemon \"d\"]\nscope = galaxy\n", 2, "scope must be");
	expect_error("[daemon \"d\"]\ncheckin_timeout = x\n", 2, "checkin_timeout must be");
	expect_error("[daemon \"d\"]\nexec = /a\n[daemon \"d\"]\n", 3, "appears twice");
	expect_error("[daemon \"d/e\"]\n", 1, "bad daemon name");
}
END_TEST

START_TEST(test_long_job_class_names)
{
	/* longer than inih's 50-byte section buffer: keys must still apply */
	const char *cls = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper";
	char text[512];
	snprintf(text, sizeof(text), "[forq]\n[job \"%s\"]\nexec = /bin/true\ntimeout = 7\n", cls);
	ck_assert_int_eq(parse(text), 0);
	const struct config_job *j = config_find_job(cfg, cls);
	ck_assert_ptr_nonnull(j);
	ck_assert(j->timeout == 7.0);
	ck_assert_str_eq(j->argv[0], "/bin/true");
	snprintf(text, sizeof(text), "[job \"%s\"]\nbogus = 1\n", cls);
	expect_error(text, 2, "unknown key 'bogus'");
}
END_TEST

START_TEST(test_indented_keys_are_layout)
{
	ck_assert_int_eq(parse("[forq]\nprocesses = 2\n  tag = x\n\tshutdown_timeout = 5\n"), 0);
	ck_assert_int_eq(cfg->processes, 2);
	ck_assert_str_eq(cfg->tag, "x");
	ck_assert(cfg->shutdown_timeout == 5.0);
	expect_error("  [forq]\n  bogus = 1\n", 2, "unknown key 'bogus'");
	/* blanks inside the brackets name the same section, keys still checked */
	expect_error("[ forq ]\nprocesses = 0\n", 2, "processes must be");
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("values");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_empty_text_keeps_defaults);
	tcase_add_test(tc, test_full_section);
	tcase_add_test(tc, test_unix_socket_url);
	tcase_add_test(tc, test_processes_auto);
	tcase_add_test(tc, test_processes_number_clears_auto);
	tcase_add_test(tc, test_weighted_queues_keep_order);
	tcase_add_test(tc, test_unweighted_queues_strict_order);
	tcase_add_test(tc, test_all_weights_one_is_unweighted);
	tcase_add_test(tc, test_queues_replace_not_append);
	tcase_add_test(tc, test_bool_values);
	tcase_add_test(tc, test_comments);
	tcase_add_test(tc, test_whitespace_and_crlf);
	tcase_add_test(tc, test_queues_string);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_processes_range);
	tcase_add_test(tc, test_bad_queue_weight);
	tcase_add_test(tc, test_bad_queue_name);
	tcase_add_test(tc, test_duplicate_queue);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_test(tc, test_key_outside_section);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_duplicate_section);
	tcase_add_test(tc, test_bad_bool);
	tcase_add_test(tc, test_shutdown_timeout_range);
	tcase_add_test(tc, test_redis_url_schemes);
	tcase_add_test(tc, test_tls_keys);
	tcase_add_test(tc, test_sentinel_urls);
	tcase_add_test(tc, test_sentinel_and_replicas);
	tcase_add_test(tc, test_bad_log_settings);
	tcase_add_test(tc, test_recycling_keys);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_line_too_long);
	tcase_add_test(tc, test_first_error_wins);
	tcase_add_test(tc, test_config_set_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_load_overrides_win);
	tcase_add_test(tc, test_load_later_override_wins);
	tcase_add_test(tc, test_load_without_file_or_overrides);
	tcase_add_test(tc, test_load_override_error_names_origin);
	tcase_add_test(tc, test_load_file_error_names_line);
	tcase_add_test(tc, test_parse_file);
	tcase_add_test(tc, test_parse_missing_file);
	tcase_add_test(tc, test_indented_keys_are_layout);
	tcase_add_test(tc, test_long_job_class_names);
	tcase_add_test(tc, test_job_sections);
	tcase_add_test(tc, test_unique_keys);
	tcase_add_test(tc, test_cron_sections);
	tcase_add_test(tc, test_daemon_sections);
	suite_add_tcase(s, tc);
	return s;
}
