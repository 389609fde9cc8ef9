/* main: parses the command line, loads the configuration and hands over to
 * the master. Exit codes: 0 requested stop, 1 runtime failure, 64 usage,
 * 78 configuration (DESIGN.md section 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "config.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "master.h"
#include "plugin.h"
#include "proctitle.h"
#include "rds.h"
#include "rdsurl.h"

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

/* -n also loads the plugins (and a Ruby app), so a typo in a path or an
 * app that does not load fails the check. */
static int check_config(const struct config *cfg)
{
	char err[512];
	struct rdsurl url;
	if (config_rdsurl(cfg, &url, err, sizeof(err)) ||
	    rds_tls_check(&url, err, sizeof(err))) {
		fprintf(stderr, "forq: %s\n", err);
		return CONFIG_EXIT_CONFIG;
	}
	struct plugin_set *set = plugin_set_load(cfg, err, sizeof(err));
	if (!set) {
		fprintf(stderr, "forq: %s\n", err);
		return CONFIG_EXIT_CONFIG;
	}
	/* Every daemon's plugin entry (or Ruby app) must be there too. */
	if (daemon_set_check(cfg, true, set, err, sizeof(err))) {
		fprintf(stderr, "forq: %s\n", err);
		plugin_set_free(set);
		return CONFIG_EXIT_CONFIG;
	}
	plugin_set_free(set);
	printf("configuration OK\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	struct config_error cerr;
	struct config *cfg;
	char err[512];
	int rc;

	proctitle_init(argc, argv);
	if (client_is_command(argc, argv))
		return client_main(argc, argv);
	if (cli_parse(&cli, argc, argv, env_lookup, err, sizeof(err))) {
		fprintf(stderr, "forq: %s\n", err);
		if (!cli.env_error)
			cli_usage(stderr);
		cli_free(&cli);
		return cli.env_error ? CONFIG_EXIT_CONFIG : CONFIG_EXIT_USAGE;
	}
	switch (cli.cmd) {
	case CLI_HELP:
		cli_usage(stdout);
		cli_free(&cli);
		return 0;
	case CLI_VERSION:
		printf("forq %s (plugin API %d)\n", FORQ_VERSION, FORQ_API_VERSION);
		cli_free(&cli);
		return 0;
	default:
		break;
	}
	cfg = config_load(cli.config_path, cli.ov, cli.nov, &cerr);
	if (!cfg) {
		fprintf(stderr, "forq: %s: %s\n", cerr.where, cerr.msg);
		cli_free(&cli);
		return CONFIG_EXIT_CONFIG;
	}
	log_setup(cfg->log_level, cfg->log_format);
	/* Once, before any key is built or any process forked (keys.h). */
	keys_set_namespace(cfg->namespace);
	/* As `sidekiq -e`: the app's framework reads its own variables. */
	if (cfg->environment && *cfg->environment) {
		setenv("RAILS_ENV", cfg->environment, 0);
		setenv("RACK_ENV", cfg->environment, 0);
	}
	if (cli.cmd == CLI_CHECK) {
		rc = check_config(cfg);
		config_free(cfg);
	} else {
		rc = master_run(cfg, &cli);
	}
	cli_free(&cli);
	return rc;
}
