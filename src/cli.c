/* cli: getopt_long over DESIGN.md section 2. The result is a list of
 * key/value overrides that config_load applies after the file, so the
 * precedence command line > environment > file > default lives in one
 * ordering instead of in scattered if-statements. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void cli_usage(FILE *out)
{
	fputs("usage: forq [-C FILE] [-P N|auto] [--prefork|--no-prefork] [-q QUEUE[,WEIGHT]]...\n"
	      "            [-r PLUGIN.so|APP.rb|RAILS_ROOT]... [-t SECONDS] [-g TAG] [-e ENV]\n"
	      "            [-v|--log-level LEVEL] [--log-format text|json] [--pidfile FILE]\n"
	      "            [-n|--check] [-V|--version] [-h|--help]\n"
	      "\n"
	      "  -C, --config FILE        INI configuration (env FORQ_CONFIG)\n"
	      "  -P, --processes N|auto   worker processes (env FORQ_PROCESSES; default 1)\n"
	      "      --prefork            load plugins and the app in the master before forking\n"
	      "                           (env FORQ_PREFORK=1)\n"
	      "      --no-prefork         load plugins in each worker after fork\n"
	      "  -q, --queue Q[,WEIGHT]   queue to fetch from, repeatable (default: default)\n"
	      "  -r, --require PATH       C plugin (.so), Ruby file or Rails root; repeatable\n"
	      "  -t, --timeout SECONDS    shutdown_timeout (default 25)\n"
	      "  -g, --tag TAG            tag shown with this node\n"
	      "  -e, --environment ENV    FORQ_ENV; also RAILS_ENV and RACK_ENV when unset\n"
	      "  -v, --verbose            same as --log-level debug\n"
	      "      --log-level LEVEL    debug, info, warn or error (default info)\n"
	      "      --log-format FORMAT  text or json (default text)\n"
	      "      --pidfile FILE       write the master's pid to FILE\n"
	      "  -n, --check              check the configuration, print 'configuration OK'\n"
	      "  -V, --version            print the version\n"
	      "  -h, --help               print this help\n"
	      "\n"
	      "Redis: REDIS_URL, or the variable named by REDIS_PROVIDER.\n"
	      "Exit codes: 0 stopped on request, 1 runtime failure, 64 usage, 78 configuration.\n",
	      out);
}

static void keep(struct cli *cli, char *s)
{
	cli->owned[cli->nowned++] = s; /* at most three: -q, -r, FORQ_MAXMEM_MB */
}

/* Adds an override, validating it against the config table right away. */
static int add(struct cli *cli, const char *key, const char *value, const char *origin,
	       char *err, size_t n)
{
	char why[512];
	struct config *scratch;
	int rc;
	if (cli->nov == CLI_MAX_OVERRIDES) {
		util_seterr(err, n, "too many options");
		return -1;
	}
	scratch = config_new();
	rc = config_set(scratch, NULL, key, value, why, sizeof(why));
	config_free(scratch);
	if (rc) {
		util_seterr(err, n, "%s: %s", origin, why);
		return -1;
	}
	cli->ov[cli->nov++] = (struct config_override){key, value, origin};
	return 0;
}

/* Repeatable flags (-q, -r) accumulate into one comma-separated value. */
static char *append(char *list, const char *item)
{
	char *s = list ? xasprintf("%s, %s", list, item) : xstrdup(item);
	free(list);
	return s;
}

static int env_overrides(struct cli *cli, cli_getenv_fn env, char *err, size_t n)
{
	const char *v, *provider;
	if ((v = env("FORQ_PROCESSES")) && *v && add(cli, "processes", v, "FORQ_PROCESSES", err, n))
		return -1;
	if ((v = env("FORQ_PREFORK")) && *v && add(cli, "prefork", v, "FORQ_PREFORK", err, n))
		return -1;
	/* Sidekiq Enterprise swarm's variable: megabytes per worker. */
	if ((v = env("FORQ_MAXMEM_MB")) && *v) {
		long n_mb;
		if (util_parse_long(v, 0, 1L << 30, &n_mb)) {
			util_seterr(err, n, "FORQ_MAXMEM_MB must be a whole number of megabytes, "
				    "not '%s'", v);
			return -1;
		}
		char *mb = xasprintf("%ldM", n_mb);
		keep(cli, mb);
		if (add(cli, "max_rss", mb, "FORQ_MAXMEM_MB", err, n))
			return -1;
	}
	if ((v = env("FORQ_NAMESPACE")) && *v && add(cli, "namespace", v, "FORQ_NAMESPACE", err, n))
		return -1;
	provider = env("REDIS_PROVIDER");
	if (provider && *provider) {
		if ((v = env(provider)) && *v && add(cli, "redis_url", v, provider, err, n))
			return -1;
	} else if ((v = env("REDIS_URL")) && *v && add(cli, "redis_url", v, "REDIS_URL", err, n)) {
		return -1;
	}
	if ((v = env("FORQ_CONFIG")) && *v)
		cli->config_path = v;
	return 0;
}

enum { OPT_PREFORK = 256, OPT_NO_PREFORK, OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_PIDFILE };

static const struct option long_options[] = {
	{"config", required_argument, NULL, 'C'},
	{"processes", required_argument, NULL, 'P'},
	{"prefork", no_argument, NULL, OPT_PREFORK},
	{"no-prefork", no_argument, NULL, OPT_NO_PREFORK},
	{"queue", required_argument, NULL, 'q'},
	{"require", required_argument, NULL, 'r'},
	{"timeout", required_argument, NULL, 't'},
	{"tag", required_argument, NULL, 'g'},
	{"environment", required_argument, NULL, 'e'},
	{"verbose", no_argument, NULL, 'v'},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
	{"pidfile", required_argument, NULL, OPT_PIDFILE},
	{"check", no_argument, NULL, 'n'},
	{"version", no_argument, NULL, 'V'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* Sidekiq writes "-q name,weight"; the config file writes "name:weight". */
static char *queue_item(const char *arg)
{
	char *s = xstrdup(arg), *comma = strchr(s, ',');
	if (comma)
		*comma = ':';
	return s;
}

static int flag(struct cli *cli, int c, char **queues, char **plugins, char *err, size_t n)
{
	char *item;
	switch (c) {
	case 'C':
		cli->config_path = optarg;
		return 0;
	case 'P':
		return add(cli, "processes", optarg, "--processes", err, n);
	case OPT_PREFORK:
		return add(cli, "prefork", "true", "--prefork", err, n);
	case OPT_NO_PREFORK:
		return add(cli, "prefork", "false", "--no-prefork", err, n);
	case 'q':
		if (strchr(optarg, ',') != strrchr(optarg, ',')) {
			util_seterr(err, n, "--queue takes QUEUE or QUEUE,WEIGHT, not '%s'", optarg);
			return -1;
		}
		item = queue_item(optarg);
		*queues = append(*queues, item);
		free(item);
		return 0;
	case 'r':
		*plugins = append(*plugins, optarg);
		return 0;
	case 't':
		return add(cli, "shutdown_timeout", optarg, "--timeout", err, n);
	case 'g':
		return add(cli, "tag", optarg, "--tag", err, n);
	case 'e':
		return add(cli, "environment", optarg, "--environment", err, n);
	case 'v':
		return add(cli, "log_level", "debug", "--verbose", err, n);
	case OPT_LOG_LEVEL:
		return add(cli, "log_level", optarg, "--log-level", err, n);
	case OPT_LOG_FORMAT:
		return add(cli, "log_format", optarg, "--log-format", err, n);
	case OPT_PIDFILE:
		return add(cli, "pidfile", optarg, "--pidfile", err, n);
	case 'n':
		cli->cmd = CLI_CHECK;
		return 0;
	case 'V':
		cli->cmd = CLI_VERSION;
		return 0;
	case 'h':
		cli->cmd = CLI_HELP;
		return 0;
	default:
		util_seterr(err, n, "unknown or incomplete option");
		return -1;
	}
}

int cli_parse(struct cli *cli, int argc, char **argv, cli_getenv_fn env, char *err, size_t n)
{
	char *queues = NULL, *plugins = NULL;
	int c;

	cli->cmd = CLI_RUN;
	if (env_overrides(cli, env, err, n)) {
		cli->env_error = true;
		return -1;
	}
	optind = 0; /* full reset, so the parser can run more than once */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+C:P:q:r:t:g:e:vnVh", long_options, NULL)) != -1) {
		if (c == '?' || c == ':') {
			/* optopt names a bad short flag even inside a group like -xv,
			 * where optind has not moved past the group yet. */
			if (optopt && optopt < 256)
				util_seterr(err, n, "unknown or incomplete option '-%c'", optopt);
			else
				util_seterr(err, n, "unknown or incomplete option '%s'", argv[optind - 1]);
			goto out;
		}
		if (flag(cli, c, &queues, &plugins, err, n))
			goto out;
	}
	if (optind < argc) {
		util_seterr(err, n, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (queues) {
		keep(cli, queues);
		if (add(cli, "queues", queues, "--queue", err, n)) {
			free(plugins);
			return -1;
		}
	}
	if (plugins) {
		keep(cli, plugins);
		if (add(cli, "plugins", plugins, "--require", err, n))
			return -1;
	}
	return 0;
out:
	free(queues);
	free(plugins);
	return -1;
}

void cli_free(struct cli *cli)
{
	for (size_t i = 0; i < cli->nowned; i++)
		free(cli->owned[i]);
	cli->nowned = 0;
	cli->nov = 0;
}
