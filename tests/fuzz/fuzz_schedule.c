/* libFuzzer harness for schedule_yml: schedule_yml_parse_string on
 * arbitrary text (a failed load leaves no half-added entry), the accepted
 * entries' invariants, and the payload and sidekiq-cron record each entry
 * makes (cronpub), which the leader builds at every tick. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cronpub.h"
#include "schedule_yml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *in)
{
	fprintf(stderr, "fuzz_schedule: %s\n  input: %s\n", what, in);
	abort();
}

static void check_entry(const struct config_cron *e, const char *text)
{
	char err[256];
	if (!e->name || !e->name[0] || !e->schedule || !e->job_class || !e->source)
		fail("accepted an entry without name, cron, class or source", text);
	char *p = cronpub_payload(e, 1796000000, "0123456789abcdef01234567", 1796000000.25, err,
				  sizeof(err));
	if (!p)
		fail("accepted an entry whose payload does not build", text);
	free(p);
	free(cronpub_cron(e));
	free(cronpub_message(e));
	free(cronpub_queue(e));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct config_error err;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct config *c = config_new();
	if (schedule_yml_parse_string(c, text, size, "fuzz.yml", &err) == 0) {
		for (size_t i = 0; i < c->ncrons; i++)
			check_entry(&c->crons[i], text);
	} else if (!err.where[0] || !err.msg[0]) {
		fail("failed without saying where or why", text);
	} else if (c->ncrons) {
		fail("a failed load kept entries", text);
	}
	config_free(c);
	free(text);
	return 0;
}
