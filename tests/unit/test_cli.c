/* Unit tests for cli: flags and environment turned into config overrides,
 * with a fake environment table instead of the process's own, and the
 * precedence (command line after environment) checked through config_load. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "cli.h"

#define MAX_ARGS 32

struct env_var {
	const char *name, *value;
};

static const struct env_var *fake_env; /* NULL-terminated by name */
static struct cli cli;
static char err[512];
static char *argv_copy[MAX_ARGS + 1];

static const char *fake_getenv(const char *name)
{
	for (const struct env_var *e = fake_env; e && e->name; e++)
		if (!strcmp(e->name, name))
			return e->value;
	return NULL;
}

static void setup(void)
{
	memset(&cli, 0, sizeof(cli));
	memset(err, 0, sizeof(err));
	fake_env = NULL;
}

static void free_argv(void)
{
	for (size_t i = 0; i < MAX_ARGS && argv_copy[i]; i++) {
		free(argv_copy[i]);
		argv_copy[i] = NULL;
	}
}

static void teardown(void)
{
	cli_free(&cli);
	free_argv();
}

/* Runs cli_parse on "forq" followed by args (NULL-terminated), on writable
 * copies that stay alive until teardown (config_path borrows from argv). */
static int parse_args(const char *const *args)
{
	int argc = 0;
	free_argv();
	argv_copy[argc++] = strdup("forq");
	for (; args && *args; args++) {
		ck_assert_int_lt(argc, MAX_ARGS);
		argv_copy[argc++] = strdup(*args);
	}
	argv_copy[argc] = NULL;
	return cli_parse(&cli, argc, argv_copy, fake_getenv, err, sizeof(err));
}

#define PARSE(...) parse_args((const char *const[]){__VA_ARGS__ __VA_OPT__(, ) NULL})

/* The last override for key, or NULL. */
static const struct config_override *last_override(const char *key)
{
	const struct config_override *found = NULL;
	for (size_t i = 0; i < cli.nov; i++)
		if (!strcmp(cli.ov[i].key, key))
			found = &cli.ov[i];
	return found;
}

static void expect_override(const char *key, const char *value, const char *origin)
{
	const struct config_override *o = last_override(key);
	ck_assert_msg(o != NULL, "no override for %s", key);
	ck_assert_str_eq(o->value, value);
	ck_assert_str_eq(o->origin, origin);
}

/* Loads a config from the parsed overrides; the caller frees it. */
static struct config *load(void)
{
	struct config_error e;
	struct config *c = config_load(NULL, cli.ov, cli.nov, &e);
	ck_assert_msg(c != NULL, "%s: %s", e.where, e.msg);
	return c;
}

START_TEST(test_no_args)
{
	ck_assert_int_eq(PARSE(), 0);
	ck_assert_int_eq(cli.cmd, CLI_RUN);
	ck_assert_uint_eq(cli.nov, 0);
	ck_assert_ptr_null(cli.config_path);
}
END_TEST

START_TEST(test_processes)
{
	ck_assert_int_eq(PARSE("-P", "3"), 0);
	ck_assert_int_eq(cli.cmd, CLI_RUN);
	ck_assert_uint_eq(cli.nov, 1);
	expect_override("processes", "3", "--processes");
	struct config *c = load();
	ck_assert_int_eq(c->processes, 3);
	config_free(c);
}
END_TEST

START_TEST(test_processes_long_forms)
{
	ck_assert_int_eq(PARSE("--processes=6"), 0);
	expect_override("processes", "6", "--processes");
	cli_free(&cli);
	ck_assert_int_eq(PARSE("--processes", "7"), 0);
	expect_override("processes", "7", "--processes");
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-P8"), 0);
	expect_override("processes", "8", "--processes");
}
END_TEST

START_TEST(test_processes_auto)
{
	ck_assert_int_eq(PARSE("-P", "auto"), 0);
	expect_override("processes", "auto", "--processes");
	struct config *c = load();
	ck_assert(c->processes_auto);
	config_free(c);
}
END_TEST

START_TEST(test_bad_processes)
{
	ck_assert_int_eq(PARSE("-P", "0"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--processes"));
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-P", "abc"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--processes"));
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-P", "1025"), -1);
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-P"), -1); /* missing argument */
}
END_TEST

START_TEST(test_unknown_flag)
{
	ck_assert_int_eq(PARSE("-x"), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown"));
	cli_free(&cli);
	ck_assert_int_eq(PARSE("--bogus"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--bogus"));
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-P", "2", "--no-such-flag=1"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--no-such-flag"));
}
END_TEST

START_TEST(test_unknown_flag_in_cluster_named)
{
	/* getopt is still inside "-xv" when it rejects x, so optind has not moved */
	ck_assert_int_eq(PARSE("-xv"), -1);
	ck_assert_msg(strstr(err, "-x") != NULL, "error does not name -x: %s", err);
	ck_assert_msg(strstr(err, "'forq'") == NULL, "error names argv[0]: %s", err);
}
END_TEST

START_TEST(test_stray_argument)
{
	ck_assert_int_eq(PARSE("stray"), -1);
	ck_assert(!cli.env_error);
	ck_assert_ptr_nonnull(strstr(err, "unexpected argument 'stray'"));
	cli_free(&cli);
	/* options after a positional are not permuted in front of it */
	ck_assert_int_eq(PARSE("-P", "2", "stray", "-P", "3"), -1);
	ck_assert_ptr_nonnull(strstr(err, "'stray'"));
}
END_TEST

START_TEST(test_queues_accumulate)
{
	ck_assert_int_eq(PARSE("-q", "a,2", "-q", "b"), 0);
	ck_assert_uint_eq(cli.nov, 1);
	expect_override("queues", "a:2, b", "--queue");
	struct config *c = load();
	ck_assert_uint_eq(c->nqueues, 2);
	ck_assert_str_eq(c->queues[0].name, "a");
	ck_assert_int_eq(c->queues[0].weight, 2);
	ck_assert_str_eq(c->queues[1].name, "b");
	ck_assert_int_eq(c->queues[1].weight, 1);
	ck_assert(c->queues_weighted);
	config_free(c);
}
END_TEST

START_TEST(test_bad_queue)
{
	ck_assert_int_eq(PARSE("-q", "a,2,3"), -1);
	ck_assert_ptr_nonnull(strstr(err, "QUEUE,WEIGHT"));
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-q", "a,x"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--queue"));
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-q", "a", "-q", "a"), -1);
	ck_assert_ptr_nonnull(strstr(err, "listed twice"));
}
END_TEST

START_TEST(test_plugins_accumulate)
{
	ck_assert_int_eq(PARSE("-r", "x.so", "--require", "y.so"), 0);
	ck_assert_uint_eq(cli.nov, 1);
	expect_override("plugins", "x.so, y.so", "--require");
	struct config *c = load();
	ck_assert_uint_eq(c->nplugins, 2);
	ck_assert_str_eq(c->plugins[0], "x.so");
	ck_assert_str_eq(c->plugins[1], "y.so");
	config_free(c);
}
END_TEST

START_TEST(test_prefork_flags)
{
	struct config *c;
	ck_assert_int_eq(PARSE("--prefork"), 0);
	expect_override("prefork", "true", "--prefork");
	c = load();
	ck_assert(c->prefork);
	config_free(c);
	cli_free(&cli);

	ck_assert_int_eq(PARSE("--prefork", "--no-prefork"), 0);
	expect_override("prefork", "false", "--no-prefork");
	c = load();
	ck_assert(!c->prefork);
	config_free(c);
}
END_TEST

START_TEST(test_other_settings)
{
	ck_assert_int_eq(PARSE("-t", "10", "-g", "billing", "-e", "staging", "--log-format", "json",
	                       "--pidfile", "/run/f.pid", "--log-level", "warn"),
	                 0);
	struct config *c = load();
	ck_assert_double_eq(c->shutdown_timeout, 10.0);
	ck_assert_str_eq(c->tag, "billing");
	ck_assert_str_eq(c->environment, "staging");
	ck_assert_int_eq(c->log_format, LOG_FORMAT_JSON);
	ck_assert_str_eq(c->pidfile, "/run/f.pid");
	ck_assert_int_eq(c->log_level, LOG_WARN);
	config_free(c);
	cli_free(&cli);

	ck_assert_int_eq(PARSE("-v"), 0);
	expect_override("log_level", "debug", "--verbose");
}
END_TEST

START_TEST(test_bad_settings)
{
	ck_assert_int_eq(PARSE("-t", "soon"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--timeout"));
	cli_free(&cli);
	ck_assert_int_eq(PARSE("--log-format", "xml"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--log-format"));
	cli_free(&cli);
	ck_assert_int_eq(PARSE("--log-level", "loud"), -1);
}
END_TEST

START_TEST(test_commands)
{
	ck_assert_int_eq(PARSE("-n"), 0);
	ck_assert_int_eq(cli.cmd, CLI_CHECK);
	cli_free(&cli);
	ck_assert_int_eq(PARSE("--check"), 0);
	ck_assert_int_eq(cli.cmd, CLI_CHECK);
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-V"), 0);
	ck_assert_int_eq(cli.cmd, CLI_VERSION);
	cli_free(&cli);
	ck_assert_int_eq(PARSE("--version"), 0);
	ck_assert_int_eq(cli.cmd, CLI_VERSION);
	cli_free(&cli);
	ck_assert_int_eq(PARSE("-h"), 0);
	ck_assert_int_eq(cli.cmd, CLI_HELP);
	cli_free(&cli);
	ck_assert_int_eq(PARSE("--help"), 0);
	ck_assert_int_eq(cli.cmd, CLI_HELP);
	cli_free(&cli);
	/* each call starts from CLI_RUN */
	ck_assert_int_eq(PARSE(), 0);
	ck_assert_int_eq(cli.cmd, CLI_RUN);
}
END_TEST

START_TEST(test_env_then_cli_precedence)
{
	static const struct env_var env[] = {{"FORQ_PROCESSES", "5"}, {NULL, NULL}};
	fake_env = env;
	ck_assert_int_eq(PARSE("-P", "2"), 0);
	ck_assert_uint_eq(cli.nov, 2);
	ck_assert_str_eq(cli.ov[0].key, "processes");
	ck_assert_str_eq(cli.ov[0].value, "5");
	ck_assert_str_eq(cli.ov[0].origin, "FORQ_PROCESSES");
	ck_assert_str_eq(cli.ov[1].key, "processes");
	ck_assert_str_eq(cli.ov[1].value, "2");
	ck_assert_str_eq(cli.ov[1].origin, "--processes");
	struct config *c = load();
	ck_assert_int_eq(c->processes, 2);
	config_free(c);
}
END_TEST

START_TEST(test_env_alone)
{
	static const struct env_var env[] = {
	    {"FORQ_PROCESSES", "5"},
	    {"FORQ_PREFORK", "1"},
	    {"REDIS_URL", "redis://cache:6379/1"},
	    {NULL, NULL},
	};
	fake_env = env;
	ck_assert_int_eq(PARSE(), 0);
	ck_assert_uint_eq(cli.nov, 3);
	expect_override("processes", "5", "FORQ_PROCESSES");
	expect_override("prefork", "1", "FORQ_PREFORK");
	expect_override("redis_url", "redis://cache:6379/1", "REDIS_URL");
	struct config *c = load();
	ck_assert_int_eq(c->processes, 5);
	ck_assert(c->prefork);
	ck_assert_str_eq(c->redis_url, "redis://cache:6379/1");
	config_free(c);
}
END_TEST

START_TEST(test_empty_env_ignored)
{
	static const struct env_var env[] = {
	    {"FORQ_PROCESSES", ""},
	    {"REDIS_URL", ""},
	    {"FORQ_CONFIG", ""},
	    {NULL, NULL},
	};
	fake_env = env;
	ck_assert_int_eq(PARSE(), 0);
	ck_assert_uint_eq(cli.nov, 0);
	ck_assert_ptr_null(cli.config_path);
}
END_TEST

START_TEST(test_redis_provider)
{
	static const struct env_var env[] = {
	    {"REDIS_PROVIDER", "MY_URL"},
	    {"MY_URL", "redis://provided:6379/3"},
	    {"REDIS_URL", "redis://ignored:6379/0"},
	    {NULL, NULL},
	};
	fake_env = env;
	ck_assert_int_eq(PARSE(), 0);
	ck_assert_uint_eq(cli.nov, 1);
	expect_override("redis_url", "redis://provided:6379/3", "MY_URL");
	struct config *c = load();
	ck_assert_str_eq(c->redis_url, "redis://provided:6379/3");
	config_free(c);
}
END_TEST

START_TEST(test_bad_redis_env)
{
	static const struct env_var env[] = {{"REDIS_URL", "http://tls:6380"}, {NULL, NULL}};
	fake_env = env;
	ck_assert_int_eq(PARSE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "REDIS_URL"));
}
END_TEST

START_TEST(test_config_path)
{
	static const struct env_var env[] = {{"FORQ_CONFIG", "/etc/forq/env.ini"}, {NULL, NULL}};
	fake_env = env;
	ck_assert_int_eq(PARSE(), 0);
	ck_assert_str_eq(cli.config_path, "/etc/forq/env.ini");
	ck_assert_uint_eq(cli.nov, 0);
	cli_free(&cli);

	memset(&cli, 0, sizeof(cli));
	ck_assert_int_eq(PARSE("-C", "/tmp/flag.ini"), 0);
	ck_assert_str_eq(cli.config_path, "/tmp/flag.ini");
	cli_free(&cli);

	memset(&cli, 0, sizeof(cli));
	ck_assert_int_eq(PARSE("--config=/tmp/long.ini"), 0);
	ck_assert_str_eq(cli.config_path, "/tmp/long.ini");
}
END_TEST

START_TEST(test_bad_env_value)
{
	static const struct env_var env[] = {{"FORQ_PROCESSES", "x"}, {NULL, NULL}};
	fake_env = env;
	ck_assert_int_eq(PARSE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "FORQ_PROCESSES"));
	ck_assert(cli.env_error); /* a configuration error (78), not usage (64) */
	cli_free(&cli);
	/* the environment is checked even when the command line overrides it */
	ck_assert_int_eq(PARSE("-P", "2"), -1);
}
END_TEST

START_TEST(test_maxmem_env)
{
	static const struct env_var env[] = {{"FORQ_MAXMEM_MB", "300"}, {NULL, NULL}};
	static const struct env_var bad[] = {{"FORQ_MAXMEM_MB", "300M"}, {NULL, NULL}};
	fake_env = env;
	ck_assert_int_eq(PARSE(), 0);
	expect_override("max_rss", "300M", "FORQ_MAXMEM_MB");
	struct config *c = load();
	ck_assert_int_eq(c->max_rss_kb, 300L * 1024);
	config_free(c);
	cli_free(&cli);
	fake_env = bad; /* megabytes, as the swarm's variable: no suffix */
	ck_assert_int_eq(PARSE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "FORQ_MAXMEM_MB"));
	ck_assert(cli.env_error);
}
END_TEST

START_TEST(test_repeated_parse)
{
	/* cli_parse resets getopt, so a second run sees every flag again */
	for (int i = 0; i < 3; i++) {
		memset(&cli, 0, sizeof(cli));
		ck_assert_int_eq(PARSE("-q", "a", "-n", "-P", "4"), 0);
		ck_assert_int_eq(cli.cmd, CLI_CHECK);
		ck_assert_uint_eq(cli.nov, 2);
		expect_override("processes", "4", "--processes");
		expect_override("queues", "a", "--queue");
		cli_free(&cli);
		ck_assert_uint_eq(cli.nov, 0);
		ck_assert_uint_eq(cli.nowned, 0);
	}
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("flags");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_no_args);
	tcase_add_test(tc, test_processes);
	tcase_add_test(tc, test_processes_long_forms);
	tcase_add_test(tc, test_processes_auto);
	tcase_add_test(tc, test_bad_processes);
	tcase_add_test(tc, test_unknown_flag);
	tcase_add_test(tc, test_unknown_flag_in_cluster_named);
	tcase_add_test(tc, test_stray_argument);
	tcase_add_test(tc, test_queues_accumulate);
	tcase_add_test(tc, test_bad_queue);
	tcase_add_test(tc, test_plugins_accumulate);
	tcase_add_test(tc, test_prefork_flags);
	tcase_add_test(tc, test_other_settings);
	tcase_add_test(tc, test_bad_settings);
	tcase_add_test(tc, test_commands);
	tcase_add_test(tc, test_repeated_parse);
	suite_add_tcase(s, tc);

	tc = tcase_create("environment");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_env_then_cli_precedence);
	tcase_add_test(tc, test_env_alone);
	tcase_add_test(tc, test_empty_env_ignored);
	tcase_add_test(tc, test_redis_provider);
	tcase_add_test(tc, test_bad_redis_env);
	tcase_add_test(tc, test_config_path);
	tcase_add_test(tc, test_bad_env_value);
	tcase_add_test(tc, test_maxmem_env);
	suite_add_tcase(s, tc);
	return s;
}
