/* Unit tests for sidekiq_yml: Sidekiq 6.4's sidekiq.yml forms mapped onto
 * [forq] settings (keys with and without ':', weighted queues in every
 * form CLI#parse_queue takes, the environment's section merged over the
 * top level), warnings for keys forq does not use, errors at file:line for
 * ERB and malformed YAML; and config_load's layering of yml, INI and
 * overrides through real files. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suite.h"
#include "config.h"
#include "sidekiq_yml.h"

static struct config *cfg;
static struct config_error err;
static char warned[4096];
static int nwarned;

static void on_warn(void *ctx, const char *where, const char *msg)
{
	(void)ctx;
	size_t n = strlen(warned);
	snprintf(warned + n, sizeof(warned) - n, "%s %s\n", where, msg);
	nwarned++;
}

static void setup(void)
{
	cfg = config_new();
	memset(&err, 0, sizeof(err));
	warned[0] = '\0';
	nwarned = 0;
}

static void teardown(void)
{
	config_free(cfg);
	cfg = NULL;
}

static int apply(const char *text, const char *env)
{
	return sidekiq_yml_apply(cfg, text, "s.yml", env, on_warn, NULL, &err);
}

static void expect_error(const char *text, const char *where, const char *needle)
{
	struct config *c = config_new();
	struct config_error e;
	memset(&e, 0, sizeof(e));
	ck_assert_msg(sidekiq_yml_apply(c, text, "s.yml", "production", NULL, NULL, &e) == -1,
	              "no error for:\n%s", text);
	ck_assert_msg(!strcmp(e.where, where), "error at '%s', expected '%s' for:\n%s", e.where,
	              where, text);
	ck_assert_msg(strstr(e.msg, needle), "message '%s' lacks '%s'", e.msg, needle);
	config_free(c);
}

static char *queues(void)
{
	return config_queues_string(cfg);
}

START_TEST(test_symbol_keys_and_queues)
{
	ck_assert_int_eq(apply("---\n:concurrency: 5\n:timeout: 8\n:tag: seed\n"
	                       ":queues:\n  - critical\n  - default\n",
	                       "development"),
	                 0);
	ck_assert_int_eq(cfg->processes, 5);
	ck_assert(cfg->shutdown_timeout == 8);
	ck_assert_str_eq(cfg->tag, "seed");
	char *q = queues();
	ck_assert_str_eq(q, "critical:1, default:1");
	free(q);
	ck_assert(!cfg->queues_weighted); /* strict order, as Sidekiq without weights */
	ck_assert_int_eq(nwarned, 0);
}
END_TEST

START_TEST(test_plain_keys_and_weights)
{
	/* keys without ':' (Sidekiq symbolizes them), [name, weight] as flow
	 * and block sequences, a string weight, a symbol queue name */
	ck_assert_int_eq(apply("concurrency: 3\nqueues:\n  - [critical, 3]\n  -\n    - mailers\n"
	                       "    - \"2\"\n  - :default\n  - [low]\n",
	                       NULL),
	                 0);
	ck_assert_int_eq(cfg->processes, 3);
	char *q = queues();
	ck_assert_str_eq(q, "critical:3, mailers:2, default:1, low:1");
	free(q);
	ck_assert(cfg->queues_weighted);
}
END_TEST

START_TEST(test_weight_zero_keeps_strict)
{
	/* [q, 0]: to_i is 0, Sidekiq keeps strict order */
	ck_assert_int_eq(apply(":queues:\n  - [a, 0]\n  - b\n", NULL), 0);
	ck_assert(!cfg->queues_weighted);
}
END_TEST

START_TEST(test_environment_section_merges)
{
	const char *y = ":concurrency: 2\n:queues: [default]\n:tag: base\n"
	                "production:\n  :concurrency: 7\n  :queues:\n    - [critical, 2]\n"
	                "    - default\n"
	                "staging:\n  :concurrency: 4\n";
	ck_assert_int_eq(apply(y, "production"), 0);
	ck_assert_int_eq(cfg->processes, 7);
	ck_assert_str_eq(cfg->tag, "base"); /* kept from the top level */
	char *q = queues();
	ck_assert_str_eq(q, "critical:2, default:1"); /* replaced, not appended */
	free(q);
	ck_assert_int_eq(nwarned, 0); /* staging: another environment, no warning */
	teardown();
	setup();
	ck_assert_int_eq(apply(y, "development"), 0);
	ck_assert_int_eq(cfg->processes, 2);
}
END_TEST

START_TEST(test_unknown_keys_warn_once_each)
{
	ck_assert_int_eq(apply(":concurrency: 2\n:max_retries: 3\n:logfile: x.log\n"
	                       ":strict: false\nproduction:\n  :dead_max_jobs: 5\n",
	                       "production"),
	                 0);
	ck_assert_int_eq(nwarned, 3);
	ck_assert_msg(strstr(warned, "s.yml:2 ':max_retries:'"), "%s", warned);
	ck_assert_msg(strstr(warned, "s.yml:3 ':logfile:'"), "%s", warned);
	ck_assert_msg(strstr(warned, "s.yml:6 ':dead_max_jobs:'"), "%s", warned);
	ck_assert_int_eq(cfg->processes, 2);
}
END_TEST

START_TEST(test_verbose_and_require)
{
	ck_assert_int_eq(apply(":verbose: true\n:require: ./app.rb\n", NULL), 0);
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	ck_assert_uint_eq(cfg->nplugins, 1);
	ck_assert_str_eq(cfg->plugins[0], "./app.rb");
}
END_TEST

START_TEST(test_empty_and_null_values)
{
	ck_assert_int_eq(apply("", NULL), 0);
	ck_assert_int_eq(apply("---\n", NULL), 0);
	ck_assert_int_eq(apply(":concurrency:\n:tag: ~\n:queues:\n", NULL), 0);
	ck_assert_int_eq(cfg->processes, 1);
	ck_assert_uint_eq(cfg->nqueues, 1);
}
END_TEST

START_TEST(test_errors_name_the_line)
{
	expect_error(":concurrency: 2\n:tag: <%= ENV['TAG'] %>\n", "s.yml:2", "ERB");
	expect_error("# <% comment %>\n", "s.yml:1", "ERB");
	expect_error(":concurrency: 2\n:queues: [a, b\n:tag: x\n", "s.yml:3", "YAML");
	expect_error(":concurrency: 2\n  bad: indent\n", "s.yml:2", "YAML");
	expect_error(":concurrency: 0\n", "s.yml:1", "processes");
	expect_error(":concurrency: [1, 2]\n", "s.yml:1", "single value");
	expect_error(":queues:\n  - a\n  - [b, 2]\n  - a\n", "s.yml:4", "twice");
	expect_error(":queues:\n  - a\n  - [b, 2, 3]\n", "s.yml:3", "name, weight");
	expect_error(":queues:\n  - 'bad queue'\n", "s.yml:2", "queue name");
	expect_error(":queues: default\n", "s.yml:1", "list");
	expect_error("- a\n- b\n", "s.yml:1", "top level");
	expect_error("production:\n  :timeout: soon\n", "s.yml:2", "shutdown_timeout");
}
END_TEST

START_TEST(test_is_yaml)
{
	ck_assert(sidekiq_yml_is_yaml("config/sidekiq.yml", NULL));
	ck_assert(sidekiq_yml_is_yaml("x.YAML", "[forq]\n"));
	ck_assert(sidekiq_yml_is_yaml("x.conf", "# c\n\n---\n:concurrency: 2\n"));
	ck_assert(sidekiq_yml_is_yaml("x.conf", ":concurrency: 2\n"));
	ck_assert(!sidekiq_yml_is_yaml("forq.ini", "[forq]\nprocesses = 2\n"));
	ck_assert(!sidekiq_yml_is_yaml("forq.ini", "; c\n[forq]\n"));
}
END_TEST

/* Writes text to a temporary file named ...<suffix>; path holds 96 bytes. */
static void write_temp(char *path, const char *suffix, const char *text)
{
	snprintf(path, 96, "/tmp/forq-test-yml-XXXXXX%s", suffix);
	int fd = mkstemps(path, (int)strlen(suffix));
	ck_assert_int_ge(fd, 0);
	size_t len = strlen(text);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

START_TEST(test_load_layers)
{
	char yml[96], ini[96];
	char *text;
	struct config *c;
	write_temp(yml, ".yml",
	           ":concurrency: 3\n:tag: fromyml\n:timeout: 9\nproduction:\n  :concurrency: 6\n");
	/* -C the yml itself, environment from the override */
	struct config_override env = {"environment", "production", "--environment"};
	c = config_load(yml, &env, 1, &err);
	ck_assert_msg(c, "%s: %s", err.where, err.msg);
	ck_assert_int_eq(c->processes, 6);
	config_free(c);
	/* -P over the yml */
	struct config_override ov[] = {{"environment", "production", "--environment"},
	                               {"processes", "2", "--processes"}};
	c = config_load(yml, ov, 2, &err);
	ck_assert_int_eq(c->processes, 2);
	config_free(c);
	/* INI's sidekiq_config: the INI's own keys win over the yml's */
	text = NULL;
	ck_assert_int_ge(asprintf(&text, "[forq]\nsidekiq_config = %s\ntag = fromini\n", yml), 0);
	write_temp(ini, ".ini", text);
	free(text);
	c = config_load(ini, NULL, 0, &err);
	ck_assert_msg(c, "%s: %s", err.where, err.msg);
	ck_assert_str_eq(c->tag, "fromini");
	ck_assert(c->shutdown_timeout == 9);
	ck_assert_str_eq(c->path, ini);
	config_free(c);
	unlink(ini);
	/* an error in the yml names the yml's line */
	write_temp(ini, ".ini", "");
	unlink(yml);
	write_temp(yml, ".yml", ":concurrency: 2\n:tag: <%= x %>\n");
	c = config_load(yml, NULL, 0, &err);
	ck_assert(!c);
	char where[128];
	snprintf(where, sizeof(where), "%s:2", yml);
	ck_assert_str_eq(err.where, where);
	unlink(yml);
	unlink(ini);
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("sidekiq_yml");
	TCase *tc = tcase_create("map");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_symbol_keys_and_queues);
	tcase_add_test(tc, test_plain_keys_and_weights);
	tcase_add_test(tc, test_weight_zero_keeps_strict);
	tcase_add_test(tc, test_environment_section_merges);
	tcase_add_test(tc, test_unknown_keys_warn_once_each);
	tcase_add_test(tc, test_verbose_and_require);
	tcase_add_test(tc, test_empty_and_null_values);
	tcase_add_test(tc, test_errors_name_the_line);
	tcase_add_test(tc, test_is_yaml);
	tcase_add_test(tc, test_load_layers);
	suite_add_tcase(s, tc);
	return s;
}
