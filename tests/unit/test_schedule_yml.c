/* Unit tests for schedule_yml and cronpub: sidekiq-cron's schedule.yml in
 * both forms turned into cron entries (args in every form, the zone in the
 * cron string, status, flags, message, klass), the payloads and the
 * sidekiq-cron record those entries make, and the errors with their line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"
#include "config.h"
#include "cronpub.h"
#include "schedule_yml.h"

static struct config *load(const char *text)
{
	struct config *c = config_new();
	struct config_error err;
	int rc = schedule_yml_parse_string(c, text, strlen(text), "s.yml", &err);
	ck_assert_msg(!rc, "%s: %s", err.where, err.msg);
	return c;
}

static const struct config_cron *find(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->ncrons; i++)
		if (!strcmp(c->crons[i].name, name))
			return &c->crons[i];
	ck_abort_msg("no entry %s", name);
	return NULL;
}

/* The error of a bad text, as "where: msg". */
static char *load_error(const char *text)
{
	static char buf[1200];
	struct config *c = config_new();
	struct config_error err;
	ck_assert_msg(schedule_yml_parse_string(c, text, strlen(text), "s.yml", &err), "%s", text);
	snprintf(buf, sizeof(buf), "%s: %s", err.where, err.msg);
	config_free(c);
	return buf;
}

START_TEST(test_seed_hash_form)
{
	struct config *c = load("print:\n  cron: \"*/1 * * * *\"\n  class: \"PrintWorker\"\n"
	                        "  queue: default\n");
	ck_assert_uint_eq(c->ncrons, 1);
	const struct config_cron *e = find(c, "print");
	ck_assert_str_eq(e->schedule, "*/1 * * * *");
	ck_assert_ptr_null(e->timezone);
	ck_assert_str_eq(e->job_class, "PrintWorker");
	ck_assert_str_eq(e->queue, "default");
	ck_assert_ptr_null(e->args);
	ck_assert_str_eq(e->source, "s.yml");
	ck_assert_int_eq(e->line, 1);
	ck_assert_int_eq(e->status, CRON_STATUS_UNSET);
	config_free(c);
}
END_TEST

START_TEST(test_array_form_and_args)
{
	struct config *c = load(
	    "- name: a\n  cron: '* * * * *'\n  class: A\n  args: [1, \"x\", yes, 2.50, ~, 1_000]\n"
	    "- name: h\n  cron: '* * * * *'\n  class: H\n  args: {k: v, n: 1}\n"
	    "- name: js\n  cron: '* * * * *'\n  class: J\n  args: '[\"a\", {\"b\": 2}]'\n"
	    "- name: jo\n  cron: '* * * * *'\n  class: J\n  args: '{\"b\": 2}'\n"
	    "- name: s\n  cron: '* * * * *'\n  class: S\n  args: hello world\n"
	    "- name: n\n  cron: '* * * * *'\n  class: N\n  args: 5\n"
	    "- name: z\n  cron: '* * * * *'\n  class: Z\n  args:\n");
	ck_assert_uint_eq(c->ncrons, 7);
	ck_assert_str_eq(find(c, "a")->args, "[1,\"x\",true,2.5,null,1000]");
	ck_assert_int_eq(find(c, "h")->line, 5);
	ck_assert_str_eq(find(c, "h")->args, "[{\"k\":\"v\",\"n\":1}]");
	ck_assert_str_eq(find(c, "js")->args, "[\"a\", {\"b\": 2}]");
	ck_assert_str_eq(find(c, "jo")->args, "[{\"b\": 2}]");
	ck_assert_str_eq(find(c, "s")->args, "[\"hello world\"]");
	ck_assert_str_eq(find(c, "n")->args, "[5]");
	ck_assert_str_eq(find(c, "z")->args, "[]");
	config_free(c);
}
END_TEST

START_TEST(test_zone_status_flags_klass)
{
	/* a hash of defaults is an entry too in sidekiq-cron's eyes */
	ck_assert_ptr_nonnull(strstr(load_error("defaults: &d\n  queue: low\n"), "needs a cron"));

	struct config *c =
	    load("x:\n  cron: \"0 3 * * * Europe/Berlin\"\n  class: Old\n  klass: New\n"
	         "  status: disabled\n  date_as_argument: true\n  active_job: \"yes\"\n"
	         "  queue_name_prefix: app\n  retry: 3\n  symbolize_args: t\n  queue: low\n"
	         "  description: nightly\n");
	const struct config_cron *e = find(c, "x");
	ck_assert_str_eq(e->schedule, "0 3 * * *");
	ck_assert_str_eq(e->timezone, "Europe/Berlin");
	ck_assert_str_eq(e->job_class, "New");
	ck_assert_int_eq(e->status, CRON_STATUS_DISABLED);
	ck_assert(e->date_as_argument && e->active_job && e->symbolize_args);
	ck_assert_str_eq(e->retry, "3");
	ck_assert_str_eq(e->description, "nightly");
	char *q = cronpub_queue(e), *cron = cronpub_cron(e), *msg = cronpub_message(e);
	ck_assert_str_eq(q, "app_low");
	ck_assert_str_eq(cron, "0 3 * * * Europe/Berlin");
	ck_assert_str_eq(msg, "{\"queue\":\"low\",\"class\":\"New\",\"args\":[],\"retry\":3}");
	free(q);
	free(cron);
	free(msg);
	config_free(c);
}
END_TEST

START_TEST(test_merge_key)
{
	struct config *c = load("- &b {name: one, cron: '* * * * *', class: A, queue: q}\n"
	                        "- <<: *b\n  name: two\n  queue: r\n");
	ck_assert_str_eq(find(c, "one")->queue, "q");
	ck_assert_str_eq(find(c, "two")->queue, "r");
	ck_assert_str_eq(find(c, "two")->job_class, "A");
	config_free(c);
}
END_TEST

START_TEST(test_payloads)
{
	char err[256];
	struct config *c =
	    load("p:\n  cron: '* * * * * *'\n  class: P\n  args: [1]\n  date_as_argument: true\n"
	         "a:\n  cron: '* * * * *'\n  class: R\n  active_job: true\n  queue: q\n"
	         "  queue_name_prefix: app\n  queue_name_delimiter: '.'\n  args: [x]\n"
	         "m:\n  cron: '* * * * *'\n  class: K\n  message: '{\"class\": \"M\", \"queue\": "
	         "\"mq\", \"tags\": [1]}'\n");
	char *p = cronpub_payload(find(c, "p"), 1796000000, "jid1", 1796000000.5, err, sizeof(err));
	ck_assert_msg(p, "%s", err);
	ck_assert_ptr_nonnull(strstr(p, "\"args\":[1,1796000000.0]"));
	ck_assert_ptr_nonnull(strstr(p, "\"class\":\"P\""));
	free(p);
	p = cronpub_payload(find(c, "a"), 1796000000, "0123456789abcdef01234567", 1796000000, err,
	                    sizeof(err));
	ck_assert_msg(p, "%s", err);
	ck_assert_ptr_nonnull(strstr(p, "\"class\":\"" CRONPUB_AJ_WRAPPER "\""));
	ck_assert_ptr_nonnull(strstr(p, "\"wrapped\":\"R\""));
	ck_assert_ptr_nonnull(strstr(p, "\"queue\":\"app.q\""));
	ck_assert_ptr_nonnull(strstr(p, "\"job_id\":\"01234567-89ab-4def-8123-456701234567\""));
	ck_assert_ptr_nonnull(strstr(p, "\"arguments\":[\"x\"]"));
	ck_assert_ptr_nonnull(strstr(p, "\"enqueued_at\":\"2026-11-30T00:53:20Z\""));
	free(p);
	p = cronpub_payload(find(c, "m"), 1796000000, "jid3", 1796000000, err, sizeof(err));
	ck_assert_msg(p, "%s", err);
	ck_assert_ptr_nonnull(strstr(p, "\"class\": \"M\""));
	ck_assert_ptr_nonnull(strstr(p, "\"tags\": [1]"));
	ck_assert_ptr_nonnull(strstr(p, "\"args\":[]"));
	ck_assert_ptr_nonnull(strstr(p, "\"jid\":\"jid3\""));
	ck_assert_str_eq(find(c, "m")->queue, "mq");
	free(p);
	config_free(c);
}
END_TEST

START_TEST(test_record_formats)
{
	char t[CRONPUB_TIME_MAX];
	cronpub_member(1704420000, t);
	ck_assert_str_eq(t, "2024-01-05T02:00:00Z");
	cronpub_last_time(1704420003, t);
	ck_assert_str_eq(t, "2024-01-05 02:00:03 +0000");
	struct config_cron e = {.name = "n", .schedule = "@daily", .job_class = "C"};
	char *cron = cronpub_cron(&e);
	ck_assert_str_eq(cron, "0 0 * * * UTC"); /* fugit takes no zone after a macro */
	free(cron);
}
END_TEST

START_TEST(test_errors_name_the_line)
{
	ck_assert_str_eq(
	    load_error("a:\n  cron: \"<%= x %>\"\n  class: A\n"),
	    "s.yml:2: ERB (<% ... %>) is not supported: forq reads the schedule as plain YAML");
	ck_assert_ptr_nonnull(strstr(load_error("a:\n  class: A\n  cron: every 5 minutes\n"),
	                             "s.yml:3: cron 'every 5 minutes': natural-language"));
	ck_assert_ptr_nonnull(strstr(load_error("a:\n  class: A\n  cron: '0 25 * * *'\n"),
	                             "s.yml:3: cron '0 25 * * *': hour"));
	ck_assert_ptr_nonnull(strstr(load_error("a:\n  class: A\n  cron: '0 3 * * * Mars/Base'\n"),
	                             "s.yml:3: cron '0 3 * * * Mars/Base': time zone"));
	ck_assert_ptr_nonnull(
	    strstr(load_error("a:\n  class: A\n  cron: '* * * * *'\n  status: paused\n"),
	           "s.yml:4: status must be"));
	ck_assert_ptr_nonnull(strstr(load_error("a:\n  class: A\n  cron: '* * * * *'\n  foo: 1\n"),
	                             "s.yml:4: unknown key 'foo'"));
	ck_assert_ptr_nonnull(
	    strstr(load_error("a:\n  class: A\n  cron: '* * * * *'\n  message: [1]\n"),
	           "s.yml:4: message must be"));
	ck_assert_ptr_nonnull(
	    strstr(load_error("a:\n  class: A\n  cron: '* * * * *'\n  args: !ruby/sym x\n"),
	           "s.yml:4: tag"));
	ck_assert_ptr_nonnull(strstr(load_error("a:\n  class: A\n  cron: '* * * * *'\n"
	                                        "a:\n  class: B\n  cron: '* * * * *'\n"),
	                             "s.yml:4: entry 'a' is also defined by s.yml:1"));
	ck_assert_ptr_nonnull(
	    strstr(load_error("just text\n"), "s.yml:1: a schedule is a mapping"));
	ck_assert_ptr_nonnull(strstr(load_error("a: {b: [1, 2}\n"), "s.yml:1: YAML:"));
}
END_TEST

START_TEST(test_collision_with_a_cron_section)
{
	struct config *c = config_new();
	struct config_error err;
	const char *ini = "[forq]\n[cron \"x\"]\nschedule = * * * * *\nclass = B\n";
	ck_assert(!config_parse_string(c, ini, "f.ini", &err));
	free(c->path);
	c->path = strdup("/etc/forq/f.ini");
	const char *yml = "x:\n  cron: '* * * * *'\n  class: A\n";
	ck_assert(schedule_yml_parse_string(c, yml, strlen(yml), "s.yml", &err));
	ck_assert_str_eq(err.where, "s.yml:1");
	ck_assert_str_eq(err.msg, "entry 'x' is also defined by [cron \"x\"] at /etc/forq/f.ini:2");
	config_free(c);
}
END_TEST

/* Found by fuzz_schedule: a repeated key leaked the first value, a cron
 * with leading blanks freed a pointer into its copy, and a failed load kept
 * the entries read before the error. */
START_TEST(test_fuzz_regressions)
{
	struct config *c = load("a:\n  cron: \"*/5 * * * *\"\n  cron: \"  0 3 * * * UTC\"\n"
				"  retry: 2\n  retry: false\n  class: A\n");
	ck_assert_str_eq(find(c, "a")->schedule, "0 3 * * *");
	ck_assert_str_eq(find(c, "a")->timezone, "UTC");
	ck_assert_str_eq(find(c, "a")->retry, "false");
	struct config_error err;
	const char *bad = "b:\n  cron: '* * * * *'\n  class: B\nc:\n  cron: x\n  class: C\n";
	ck_assert(schedule_yml_parse_string(c, bad, strlen(bad), "s.yml", &err));
	ck_assert_str_eq(err.where, "s.yml:5");
	ck_assert_uint_eq(c->ncrons, 1); /* all or nothing */
	config_free(c);
}
END_TEST

START_TEST(test_empty_file_has_no_entries)
{
	struct config *c = load("# everything commented out\n");
	ck_assert_uint_eq(c->ncrons, 0);
	config_free(c);
}
END_TEST

Suite *make_suite(void)
{
	Suite *s = suite_create("schedule_yml");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_seed_hash_form);
	tcase_add_test(tc, test_array_form_and_args);
	tcase_add_test(tc, test_zone_status_flags_klass);
	tcase_add_test(tc, test_merge_key);
	tcase_add_test(tc, test_payloads);
	tcase_add_test(tc, test_record_formats);
	tcase_add_test(tc, test_errors_name_the_line);
	tcase_add_test(tc, test_collision_with_a_cron_section);
	tcase_add_test(tc, test_empty_file_has_no_entries);
	tcase_add_test(tc, test_fuzz_regressions);
	suite_add_tcase(s, tc);
	return s;
}
