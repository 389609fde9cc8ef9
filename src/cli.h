/* cli: the command line and environment of DESIGN.md section 2, turned into
 * config overrides (environment first, command line last, so the command
 * line wins). Values are validated here, through the config table, so a bad
 * flag is a usage error (exit 64) before anything starts. */
#ifndef FORQ_CLI_H
#define FORQ_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

#define CLI_MAX_OVERRIDES 32

enum cli_command { CLI_RUN, CLI_CHECK, CLI_HELP, CLI_VERSION };

struct cli {
	enum cli_command cmd;
	const char *config_path; /* -C, else FORQ_CONFIG, else NULL (borrowed) */
	struct config_override ov[CLI_MAX_OVERRIDES];
	size_t nov;
	char *owned[CLI_MAX_OVERRIDES]; /* values built here, freed by cli_free */
	size_t nowned;
	bool env_error; /* the error came from the environment: exit 78, not 64 */
};

typedef const char *(*cli_getenv_fn)(const char *name);

/* Parses argv (and the environment through getenv_fn). 0 on success; -1 on
 * a usage error with the reason in err. cli must be zeroed by the caller. */
int cli_parse(struct cli *cli, int argc, char **argv, cli_getenv_fn getenv_fn, char *err,
	      size_t errlen);
void cli_free(struct cli *cli);
void cli_usage(FILE *out);

#endif
