/* libFuzzer harness for config: config_parse_string on arbitrary text (a
 * failed parse leaves a half-filled config that config_free must still
 * release), the accepted result's invariants, and config_split_argv on the
 * same text as an exec = command line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *in)
{
	fprintf(stderr, "fuzz_config: %s\n  input: %s\n", what, in);
	abort();
}

/* What a successful parse promises the master. */
static void check_accepted(const struct config *c, const char *text)
{
	if (c->processes < 1 || c->processes > CONFIG_PROCESSES_MAX)
		fail("processes out of range", text);
	if (!c->nqueues || !c->queues)
		fail("no queue", text);
	for (size_t i = 0; i < c->nqueues; i++)
		if (!c->queues[i].name[0] || c->queues[i].weight < 1)
			fail("empty queue name or weight < 1", text);
	for (size_t i = 0; i < c->njobs; i++) {
		if (config_find_job(c, c->jobs[i].name) != &c->jobs[i])
			fail("config_find_job does not find its own section", text);
		if (c->jobs[i].argv && !c->jobs[i].argv[0])
			fail("exec with an empty argv", text);
	}
	free(config_queues_string(c));
}

static void check_split(const char *text)
{
	char err[512];
	char **argv = config_split_argv(text, err, sizeof(err));
	if (argv && !argv[0])
		fail("config_split_argv returned an empty argv", text);
	config_free_argv(argv);
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
	if (config_parse_string(c, text, "fuzz.ini", &err) == 0)
		check_accepted(c, text);
	else if (!err.where[0] || !err.msg[0])
		fail("failed without saying where or why", text);
	config_free(c);

	check_split(text);
	free(text);
	return 0;
}
