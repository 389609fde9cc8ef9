/* config: table-driven INI parsing on inih. Every option is one row of
 * option_table; a row names its parser, range and default, so the file, the
 * environment and the command line are validated by the same code. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cronexpr.h"
#include "job.h"
#include "keys.h"
#include "schedule_yml.h"
#include "tz.h"
#include "util.h"

struct option_def;
typedef int (*option_setter)(struct config *c, const struct option_def *d, const char *v,
			     char *err, size_t errlen);

struct option_def {
	const char *key;
	option_setter set;
	size_t offset;
	double min, max;
	const char *deflt; /* applied by config_new through the same setter */
};

#define FIELD(c, d, type) ((type *)(void *)((char *)(c) + (d)->offset))

static int set_string(struct config *c, const struct option_def *d, const char *v, char *err,
		      size_t n)
{
	char **dst = FIELD(c, d, char *);
	(void)err;
	(void)n;
	free(*dst);
	*dst = *v ? xstrdup(v) : NULL;
	return 0;
}

static int set_seconds(struct config *c, const struct option_def *d, const char *v, char *err,
		       size_t n)
{
	if (util_parse_double(v, d->min, d->max, FIELD(c, d, double))) {
		util_seterr(err, n, "%s must be a number of seconds from %g to %g, not '%s'", d->key,
		       d->min, d->max, v);
		return -1;
	}
	return 0;
}

static int set_int(struct config *c, const struct option_def *d, const char *v, char *err,
		   size_t n)
{
	long x;
	if (util_parse_long(v, (long)d->min, (long)d->max, &x)) {
		util_seterr(err, n, "%s must be a whole number from %g to %g, not '%s'", d->key,
			    d->min, d->max, v);
		return -1;
	}
	*FIELD(c, d, int) = (int)x;
	return 0;
}

static int set_bool(struct config *c, const struct option_def *d, const char *v, char *err,
		    size_t n)
{
	if (util_parse_bool(v, FIELD(c, d, bool))) {
		util_seterr(err, n, "%s must be true or false, not '%s'", d->key, v);
		return -1;
	}
	return 0;
}

static int set_processes(struct config *c, const struct option_def *d, const char *v, char *err,
			 size_t n)
{
	long p;
	if (!strcmp(v, "auto")) {
		c->processes_auto = true;
		return 0;
	}
	if (util_parse_long(v, (long)d->min, (long)d->max, &p)) {
		util_seterr(err, n, "processes must be 'auto' or a whole number from %g to %g, not '%s'",
		       d->min, d->max, v);
		return -1;
	}
	c->processes_auto = false;
	c->processes = (int)p;
	return 0;
}

static int set_log_level(struct config *c, const struct option_def *d, const char *v, char *err,
			 size_t n)
{
	(void)d;
	if (log_level_parse(v, &c->log_level)) {
		util_seterr(err, n, "log_level must be debug, info, warn or error, not '%s'", v);
		return -1;
	}
	return 0;
}

static int set_log_format(struct config *c, const struct option_def *d, const char *v, char *err,
			  size_t n)
{
	(void)d;
	if (log_format_parse(v, &c->log_format)) {
		util_seterr(err, n, "log_format must be text or json, not '%s'", v);
		return -1;
	}
	return 0;
}

static int set_redis_url(struct config *c, const struct option_def *d, const char *v, char *err,
			 size_t n)
{
	if (!strncmp(v, "rediss://", 9)) {
		util_seterr(err, n, "redis_url: rediss:// (TLS) is not supported by this build; "
			       "use a local TLS proxy such as stunnel and redis://");
		return -1;
	}
	if (strncmp(v, "redis://", 8) && strncmp(v, "unix://", 7) &&
	    strncmp(v, "redis+sentinel://", 17) && strncmp(v, "rediss+sentinel://", 18)) {
		util_seterr(err, n, "redis_url must start with redis://, unix:// or "
				    "redis+sentinel://");
		return -1;
	}
	return set_string(c, d, v, err, n);
}

/* As redis-namespace writes it: "<namespace>:<key>"; keys.h. */
static int set_namespace(struct config *c, const struct option_def *d, const char *v, char *err,
			 size_t n)
{
	if (*v && !keys_namespace_is_valid(v)) {
		util_seterr(err, n, "namespace must be 1 to %d characters without white space",
			    KEYS_NAMESPACE_MAX);
		return -1;
	}
	return set_string(c, d, v, err, n);
}

/* Splits a list on commas and white space; calls fn for each item. */
static int split_list(const char *v, int (*fn)(void *ctx, const char *item, char *err, size_t n),
		      void *ctx, char *err, size_t n)
{
	char *copy = xstrdup(v), *save = NULL, *tok;
	int rc = 0;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
		if ((rc = fn(ctx, tok, err, n)))
			break;
	free(copy);
	return rc;
}

static bool queue_name_is_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_-.", *s))
			return false;
	return true;
}

static int add_queue(void *ctx, const char *item, char *err, size_t n)
{
	struct config *c = ctx;
	char *name = xstrdup(item), *colon = strchr(name, ':');
	long w = 1;
	if (colon) {
		*colon = '\0';
		if (util_parse_long(colon + 1, 1, 1000000, &w)) {
			util_seterr(err, n, "queue '%s': weight must be a whole number from 1 to 1000000",
			       name);
			goto out_bad;
		}
	}
	if (!queue_name_is_valid(name)) {
		util_seterr(err, n, "bad queue name '%s' (letters, digits, '_', '-' and '.')", name);
		goto out_bad;
	}
	for (size_t i = 0; i < c->nqueues; i++)
		if (!strcmp(c->queues[i].name, name)) {
			util_seterr(err, n, "queue '%s' listed twice", name);
			goto out_bad;
		}
	c->queues = xrealloc(c->queues, (c->nqueues + 1) * sizeof(*c->queues));
	c->queues[c->nqueues].name = name;
	c->queues[c->nqueues].weight = (int)w;
	c->nqueues++;
	/* Sidekiq: any explicit weight (even 1) means random order. */
	if (colon)
		c->queues_weighted = true;
	return 0;
out_bad:
	free(name);
	return -1;
}

static void free_queues(struct config *c)
{
	for (size_t i = 0; i < c->nqueues; i++)
		free(c->queues[i].name);
	free(c->queues);
	c->queues = NULL;
	c->nqueues = 0;
	c->queues_weighted = false;
}

static int set_queues(struct config *c, const struct option_def *d, const char *v, char *err,
		      size_t n)
{
	(void)d;
	free_queues(c);
	if (split_list(v, add_queue, c, err, n))
		return -1;
	if (!c->nqueues) {
		util_seterr(err, n, "queues must name at least one queue");
		return -1;
	}
	return 0;
}

static int add_plugin(void *ctx, const char *item, char *err, size_t n)
{
	struct config *c = ctx;
	(void)err;
	(void)n;
	c->plugins = xrealloc(c->plugins, (c->nplugins + 1) * sizeof(*c->plugins));
	c->plugins[c->nplugins++] = xstrdup(item);
	return 0;
}

static void free_plugins(struct config *c)
{
	for (size_t i = 0; i < c->nplugins; i++)
		free(c->plugins[i]);
	free(c->plugins);
	c->plugins = NULL;
	c->nplugins = 0;
}

static int set_plugins(struct config *c, const struct option_def *d, const char *v, char *err,
		       size_t n)
{
	(void)d;
	free_plugins(c);
	return split_list(v, add_plugin, c, err, n);
}

/* max_rss, max_rss_kind, max_jobs: worker recycling (master_recycle.c). */
static int set_size_kb(struct config *c, const struct option_def *d, const char *v, char *err,
		       size_t n)
{
	if (util_parse_size_kb(v, (long)d->min, (long)d->max, FIELD(c, d, long))) {
		util_seterr(err, n, "%s must be 0 or a size such as 300M or 2G, not '%s'", d->key, v);
		return -1;
	}
	return 0;
}

static int set_count(struct config *c, const struct option_def *d, const char *v, char *err,
		     size_t n)
{
	if (util_parse_long(v, (long)d->min, (long)d->max, FIELD(c, d, long))) {
		util_seterr(err, n, "%s must be a whole number from %g to %g, not '%s'", d->key,
			    d->min, d->max, v);
		return -1;
	}
	return 0;
}

static int set_rss_kind(struct config *c, const struct option_def *d, const char *v, char *err,
			size_t n)
{
	(void)d;
	if (!strcasecmp(v, "rss") || !strcasecmp(v, "pss")) {
		c->max_rss_kind = tolower((unsigned char)v[0]) == 'p' ? CONFIG_PSS : CONFIG_RSS;
		return 0;
	}
	util_seterr(err, n, "max_rss_kind must be rss or pss, not '%s'", v);
	return -1;
}

#define OFF(f) offsetof(struct config, f)

/* The [forq] section. Defaults are DESIGN.md section 8. */
static const struct option_def option_table[] = {
	{"redis_url", set_redis_url, OFF(redis_url), 0, 0, "redis://127.0.0.1:6379/0"},
	{"processes", set_processes, OFF(processes), 1, CONFIG_PROCESSES_MAX, "1"},
	{"prefork", set_bool, OFF(prefork), 0, 0, "false"},
	{"sidekiq_metrics", set_bool, OFF(sidekiq_metrics), 0, 0, "true"},
	{"queues", set_queues, OFF(queues), 0, 0, "default"},
	{"shutdown_timeout", set_seconds, OFF(shutdown_timeout), 0, 3600, "25"},
	{"tag", set_string, OFF(tag), 0, 0, ""},
	{"plugins", set_plugins, OFF(plugins), 0, 0, ""},
	{"require", set_plugins, OFF(plugins), 0, 0, ""}, /* sidekiq -r's name */
	{"user", set_string, OFF(user), 0, 0, ""},
	{"environment", set_string, OFF(environment), 0, 0, ""},
	{"log_level", set_log_level, OFF(log_level), 0, 0, "info"},
	{"log_format", set_log_format, OFF(log_format), 0, 0, "text"},
	{"pidfile", set_string, OFF(pidfile), 0, 0, ""},
	{"max_rss", set_size_kb, OFF(max_rss_kb), 0, 1L << 40, "0"},
	{"max_rss_kind", set_rss_kind, OFF(max_rss_kind), 0, 0, "rss"},
	{"max_jobs", set_count, OFF(max_jobs), 0, 1e12, "0"},
	{"log_file", set_string, OFF(log_file), 0, 0, ""},
	{"node_dead_after", set_seconds, OFF(node_dead_after), 1, 3600, "30"},
	{"sweep_interval", set_seconds, OFF(sweep_interval), 0.1, 3600, "10"},
	{"leader_ttl", set_seconds, OFF(leader_ttl), 1, 3600, "30"},
	{"leader_renew", set_seconds, OFF(leader_renew), 0.1, 3600, "10"},
	{"unique_lease", set_seconds, OFF(unique_lease), 1, 86400, "30"},
	{"daemon_ttl", set_seconds, OFF(daemon_ttl), 1, 3600, "30"},
	{"daemon_renew", set_seconds, OFF(daemon_renew), 0.1, 3600, "10"},
	{"daemon_acquire", set_seconds, OFF(daemon_acquire), 0.1, 3600, "5"},
	{"namespace", set_namespace, OFF(namespace), 0, 0, ""},
	{"sidekiq_config", set_string, OFF(sidekiq_config), 0, 0, ""},
	{"cron_schedule", set_string, OFF(cron_schedule), 0, 0, ""},
	{"cron_publish", set_bool, OFF(cron_publish), 0, 0, "true"},
	/* Sentinel and replication (sentinel.h, worker_redis.c) */
	{"sentinel_password", set_string, OFF(sentinel_password), 0, 0, ""},
	{"min_replicas", set_int, OFF(min_replicas), 0, 100, "0"},
	/* each WAIT stays well inside a worker's 5 s call timeout */
	{"min_replicas_timeout", set_seconds, OFF(min_replicas_timeout), 0.01, 2, "1"},
};

char **config_split_argv(const char *cmd, char *err, size_t n)
{
	char **argv = NULL, *word = xmalloc(strlen(cmd) + 1);
	size_t argc = 0, len = 0;
	bool in_word = false;
	char quote = 0;

	for (const char *p = cmd;; p++) {
		char ch = *p;
		if (!ch || (!quote && (ch == ' ' || ch == '\t'))) {
			if (quote) {
				util_seterr(err, n, "unterminated %c quote in '%s'", quote, cmd);
				goto out_bad;
			}
			if (in_word) {
				argv = xrealloc(argv, (argc + 2) * sizeof(*argv));
				argv[argc++] = xstrndup(word, len);
				argv[argc] = NULL;
				len = 0;
				in_word = false;
			}
			if (!ch)
				break;
			continue;
		}
		in_word = true;
		if (quote == '\'' ) {
			if (ch == '\'')
				quote = 0;
			else
				word[len++] = ch;
		} else if (ch == '\\' && p[1]) {
			word[len++] = *++p;
		} else if (quote == '"' && ch == '"') {
			quote = 0;
		} else if (!quote && (ch == '"' || ch == '\'')) {
			quote = ch;
		} else {
			word[len++] = ch;
		}
	}
	free(word);
	if (!argc) {
		util_seterr(err, n, "empty command");
		return NULL;
	}
	return argv;
out_bad:
	free(word);
	config_free_argv(argv);
	return NULL;
}

void config_free_argv(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

const struct config_job *config_find_job(const struct config *c, const char *job_class)
{
	for (size_t i = 0; i < c->njobs; i++)
		if (!strcmp(c->jobs[i].name, job_class))
			return &c->jobs[i];
	return NULL;
}

static const char *const unique_names[] = {
	[UNIQUE_NONE] = "none",
	[UNIQUE_UNTIL_EXECUTING] = "until_executing",
	[UNIQUE_UNTIL_EXECUTED] = "until_executed",
	[UNIQUE_WHILE_EXECUTING] = "while_executing",
	[UNIQUE_UNTIL_AND_WHILE_EXECUTING] = "until_and_while_executing",
	[UNIQUE_UNTIL_EXPIRED] = "until_expired",
};

const char *config_unique_name(enum config_unique u)
{
	return (unsigned)u < ARRAY_SIZE(unique_names) ? unique_names[u] : "none";
}

int config_unique_parse(const char *s, enum config_unique *out)
{
	for (unsigned i = 0; i < ARRAY_SIZE(unique_names); i++)
		if (!strcmp(s, unique_names[i])) {
			*out = (enum config_unique)i;
			return 0;
		}
	return -1;
}

const char *config_catch_up_name(enum config_catch_up c)
{
	return c == CATCH_UP_ALL ? "all" : c == CATCH_UP_NONE ? "none" : "latest";
}

static int add_unique_arg(void *ctx, const char *item, char *err, size_t n)
{
	struct config_job *j = ctx;
	long l;
	if (util_parse_long(item, 0, 1000, &l)) {
		util_seterr(err, n, "unique_args: '%s' is not an argument position from 0 to 1000",
			    item);
		return -1;
	}
	if (j->nunique_args == CONFIG_UNIQUE_ARGS_MAX) {
		util_seterr(err, n, "unique_args: at most %d positions", CONFIG_UNIQUE_ARGS_MAX);
		return -1;
	}
	for (size_t i = 0; i < j->nunique_args; i++)
		if (j->unique_args[i] == (int)l) {
			util_seterr(err, n, "unique_args: position %ld listed twice", l);
			return -1;
		}
	j->unique_args[j->nunique_args++] = (int)l;
	return 0;
}

static int parse_unique_args(struct config_job *j, const char *v, char *err, size_t n)
{
	j->nunique_args = 0;
	if (split_list(v, add_unique_arg, j, err, n))
		return -1;
	if (!j->nunique_args) {
		util_seterr(err, n, "unique_args must list argument positions (0 = the first)");
		return -1;
	}
	return 0;
}

/* Names of cron entries and daemons end up in Redis keys and log lines. */
static bool entry_name_is_valid(const char *s)
{
	size_t len = strlen(s);
	if (!len || len > 100)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_-.:@", *s))
			return false;
	return true;
}

/* [cron "name"] keys. The schedule and time zone are checked where the
 * entry is compiled (cron.c); here they are kept as text. */
static int cron_set(struct config_cron *e, const char *key, const char *v, char *err, size_t n)
{
	char **dst = NULL, why[256];
	if (!strcmp(key, "schedule")) {
		/* checked here too so that the error names this line */
		struct cronexpr *x = cronexpr_parse(v, why, sizeof(why));
		if (!x) {
			util_seterr(err, n, "schedule '%s': %s", v, why);
			return -1;
		}
		cronexpr_free(x);
		dst = &e->schedule;
	} else if (!strcmp(key, "timezone")) {
		struct tz *z = tz_load(v, why, sizeof(why));
		if (!z) {
			util_seterr(err, n, "timezone: %s", why);
			return -1;
		}
		tz_free(z);
		dst = &e->timezone;
	} else if (!strcmp(key, "class"))
		dst = &e->job_class;
	else if (!strcmp(key, "args"))
		dst = &e->args;
	else if (!strcmp(key, "queue")) {
		if (!queue_name_is_valid(v)) {
			util_seterr(err, n, "bad queue name '%s' (letters, digits, '_', '-' and '.')", v);
			return -1;
		}
		dst = &e->queue;
	} else if (!strcmp(key, "retry")) {
		long l;
		bool b;
		if (!util_parse_long(v, 0, 1000, &l)) {
			/* a number of retries, kept as written */
		} else if (!util_parse_bool(v, &b)) {
			v = b ? "true" : "false";
		} else {
			util_seterr(err, n, "retry must be true, false or a number from 0 to 1000, not '%s'",
				    v);
			return -1;
		}
		dst = &e->retry;
	} else if (!strcmp(key, "catch_up")) {
		if (!strcmp(v, "latest"))
			e->catch_up = CATCH_UP_LATEST;
		else if (!strcmp(v, "all"))
			e->catch_up = CATCH_UP_ALL;
		else if (!strcmp(v, "none"))
			e->catch_up = CATCH_UP_NONE;
		else {
			util_seterr(err, n, "catch_up must be latest, all or none, not '%s'", v);
			return -1;
		}
		return 0;
	} else if (!strcmp(key, "overlap")) {
		if (strcmp(v, "allow") && strcmp(v, "forbid")) {
			util_seterr(err, n, "overlap must be allow or forbid, not '%s'", v);
			return -1;
		}
		e->overlap_forbid = !strcmp(v, "forbid");
		return 0;
	} else {
		util_seterr(err, n, "unknown key '%s' in [cron \"%s\"]", key, e->name);
		return -1;
	}
	if (!*v) {
		util_seterr(err, n, "%s must not be empty", key);
		return -1;
	}
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

/* After its section: what a cron entry needs as a whole. */
static int cron_check(const struct config_cron *e, char *err, size_t n)
{
	char cerr[256];
	if (!e->schedule || !e->job_class) {
		util_seterr(err, n, "[cron \"%s\"] needs %s", e->name,
			    !e->schedule ? "a schedule" : "a class");
		return -1;
	}
	/* schedule and timezone were checked at their own lines (cron_set) */
	/* The payload is built once here with a dummy jid so that a bad class,
	 * args or retry is a configuration error, not a failure at the tick. */
	char *p = job_build(e->job_class, e->args ? e->args : "[]", e->queue, e->retry ? e->retry : "true",
			    "0", NULL, 0, false, cerr, sizeof(cerr));
	if (!p) {
		util_seterr(err, n, "[cron \"%s\"]: %s", e->name, cerr);
		return -1;
	}
	free(p);
	return 0;
}

void config_cron_fini(struct config_cron *e)
{
	free(e->name);
	free(e->source);
	free(e->schedule);
	free(e->timezone);
	free(e->job_class);
	free(e->args);
	free(e->queue);
	free(e->retry);
	free(e->description);
	free(e->queue_name_prefix);
	free(e->queue_name_delimiter);
	free(e->message);
}

static int daemon_set(struct config_daemon *d, const char *key, const char *v, char *err,
		      size_t n)
{
	if (!strcmp(key, "exec")) {
		char **argv = config_split_argv(v, err, n);
		if (!argv)
			return -1;
		config_free_argv(d->argv);
		d->argv = argv;
	} else if (!strcmp(key, "plugin")) {
		if (!*v) {
			util_seterr(err, n, "plugin must name a daemon entry point");
			return -1;
		}
		if (d->ruby) {
			util_seterr(err, n, "plugin and ruby cannot both be set");
			return -1;
		}
		free(d->plugin);
		d->plugin = xstrdup(v);
	} else if (!strcmp(key, "ruby")) {
		if (!*v || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789_:") != strlen(v)) {
			util_seterr(err, n, "ruby must name a Ruby class, not '%s'", v);
			return -1;
		}
		if (d->plugin && !d->ruby) {
			util_seterr(err, n, "plugin and ruby cannot both be set");
			return -1;
		}
		free(d->ruby);
		free(d->plugin);
		d->ruby = xstrdup(v);
		d->plugin = xstrdup(CONFIG_RUBY_DAEMON_ENTRY);
	} else if (!strcmp(key, "args")) {
		char cerr[256];
		char *p = job_build("X", v, "default", NULL, "0", NULL, 0, false, cerr, sizeof(cerr));
		if (!p) {
			util_seterr(err, n, "args: %s", cerr);
			return -1;
		}
		free(p);
		free(d->args);
		d->args = xstrdup(v);
	} else if (!strcmp(key, "scope")) {
		if (!strcmp(v, "cluster"))
			d->scope = DAEMON_SCOPE_CLUSTER;
		else if (!strcmp(v, "node"))
			d->scope = DAEMON_SCOPE_NODE;
		else {
			util_seterr(err, n, "scope must be cluster or node, not '%s'", v);
			return -1;
		}
	} else if (!strcmp(key, "checkin_timeout")) {
		if (util_parse_double(v, 0, 86400, &d->checkin_timeout)) {
			util_seterr(err, n,
				    "checkin_timeout must be a number of seconds from 0 to 86400, not '%s'", v);
			return -1;
		}
	} else if (!strcmp(key, "stop_timeout")) {
		if (util_parse_double(v, 0, 3600, &d->stop_timeout)) {
			util_seterr(err, n,
				    "stop_timeout must be a number of seconds from 0 to 3600, not '%s'", v);
			return -1;
		}
	} else {
		util_seterr(err, n, "unknown key '%s' in [daemon \"%s\"]", key, d->name);
		return -1;
	}
	return 0;
}

static int daemon_check(const struct config_daemon *d, char *err, size_t n)
{
	if (!d->argv == !d->plugin) {
		util_seterr(err, n, "[daemon \"%s\"] needs exactly one of exec, plugin or ruby",
			    d->name);
		return -1;
	}
	if (d->args && !d->ruby) {
		util_seterr(err, n, "[daemon \"%s\"] args is for ruby = Class", d->name);
		return -1;
	}
	return 0;
}

/* [job "Class"] keys: parsed into the section's struct config_job. */
static int job_set(struct config_job *j, const char *key, const char *v, char *err, size_t n)
{
	long l;
	if (!strcmp(key, "exec")) {
		char **argv = config_split_argv(v, err, n);
		if (!argv)
			return -1;
		config_free_argv(j->argv);
		j->argv = argv;
	} else if (!strcmp(key, "timeout")) {
		if (util_parse_double(v, 0, 604800, &j->timeout)) {
			util_seterr(err, n, "timeout must be a number of seconds from 0 to 604800, not '%s'",
			       v);
			return -1;
		}
	} else if (!strcmp(key, "retry")) {
		if (util_parse_long(v, 0, 1000, &l)) {
			util_seterr(err, n, "retry must be a whole number from 0 to 1000, not '%s'", v);
			return -1;
		}
		j->retry = (int)l;
	} else if (!strcmp(key, "unique")) {
		if (config_unique_parse(v, &j->unique)) {
			util_seterr(err, n, "unique must be none, until_executing, until_executed, "
				    "while_executing, until_and_while_executing or until_expired, "
				    "not '%s'", v);
			return -1;
		}
	} else if (!strcmp(key, "unique_ttl")) {
		if (util_parse_double(v, 1, 31536000, &j->unique_ttl)) {
			util_seterr(err, n,
				    "unique_ttl must be a number of seconds from 1 to 31536000, not '%s'", v);
			return -1;
		}
	} else if (!strcmp(key, "unique_args")) {
		return parse_unique_args(j, v, err, n);
	} else {
		util_seterr(err, n, "unknown key '%s' in [job \"%s\"]", key, j->name);
		return -1;
	}
	return 0;
}

static const struct option_def *option_find(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(option_table); i++)
		if (!strcmp(option_table[i].key, key))
			return &option_table[i];
	return NULL;
}

struct config *config_new(void)
{
	struct config *c = xcalloc(1, sizeof(*c));
	char err[256];
	for (size_t i = 0; i < ARRAY_SIZE(option_table); i++)
		if (option_table[i].set(c, &option_table[i], option_table[i].deflt, err,
					sizeof(err)))
			abort(); /* a bad built-in default is a programming error */
	return c;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->redis_url);
	free_queues(c);
	free(c->tag);
	free_plugins(c);
	free(c->user);
	free(c->environment);
	free(c->pidfile);
	free(c->log_file);
	free(c->namespace);
	free(c->sidekiq_config);
	free(c->sentinel_password);
	for (size_t i = 0; i < c->njobs; i++) {
		free(c->jobs[i].name);
		config_free_argv(c->jobs[i].argv);
	}
	free(c->jobs);
	for (size_t i = 0; i < c->ncrons; i++)
		config_cron_fini(&c->crons[i]);
	free(c->crons);
	free(c->cron_schedule);
	for (size_t i = 0; i < c->ndaemons; i++) {
		free(c->daemons[i].name);
		config_free_argv(c->daemons[i].argv);
		free(c->daemons[i].plugin);
		free(c->daemons[i].ruby);
		free(c->daemons[i].args);
	}
	free(c->daemons);
	free(c);
}

int config_set(struct config *c, const char *section, const char *key, const char *value,
	       char *err, size_t errlen)
{
	const struct option_def *d;
	if (section && strcmp(section, "forq")) {
		util_seterr(err, errlen, "unknown section [%s]", section);
		return -1;
	}
	if (!(d = option_find(key))) {
		util_seterr(err, errlen, "unknown key '%s' in [forq]", key);
		return -1;
	}
	return d->set(c, d, value, err, errlen);
}

/* Parser state: inih gives no line numbers to handlers in Debian's build, so
 * our reader counts lines and the handler reads the count. */
struct parse_state {
	struct config *c;
	const char *name;
	const char *p; /* next unread byte of the text */
	int line;
	int err_line;
	char err[512];
	bool seen[ARRAY_SIZE(option_table)];
	bool in_section;
	/* With SECT_JOB, SECT_CRON and SECT_DAEMON: index of the section in its
	 * array of c, and a bit per key already set in it. */
	enum { SECT_NONE, SECT_FORQ, SECT_JOB, SECT_CRON, SECT_DAEMON, SECT_BAD } sect;
	size_t idx;
	unsigned seen_keys;
	size_t first_cron, first_daemon; /* sections this parse added start here */
};

static const char *const job_keys[] = {"exec", "timeout", "retry", "unique", "unique_ttl",
				       "unique_args"};
static const char *const cron_keys[] = {"schedule", "timezone", "class", "args",
					"queue", "retry", "catch_up", "overlap"};
static const char *const daemon_keys[] = {"exec", "plugin", "ruby", "args", "scope", "checkin_timeout",
					  "stop_timeout"};

/* Splits a section header body ('forq' or 'job "Name"') into its kind and
 * name; -1 when it has neither shape. */
static int section_split(const char *raw, char *kind, size_t kn, char *name, size_t nn)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", raw);
	char *s = util_trim(buf), *sp = s + strcspn(s, " \t");
	name[0] = '\0';
	if (*sp) {
		*sp++ = '\0';
		sp = util_trim(sp);
		size_t len = strlen(sp);
		if (len < 3 || sp[0] != '"' || sp[len - 1] != '"' || memchr(sp + 1, '"', len - 2))
			return -1;
		sp[len - 1] = '\0';
		snprintf(name, nn, "%s", sp + 1);
	}
	snprintf(kind, kn, "%s", s);
	return 0;
}

static struct config_job *job_find_mut(struct config *c, const char *name)
{
	for (size_t i = 0; i < c->njobs; i++)
		if (!strcmp(c->jobs[i].name, name))
			return &c->jobs[i];
	return NULL;
}

static bool cron_exists(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->ncrons; i++)
		if (!strcmp(c->crons[i].name, name))
			return true;
	return false;
}

static bool daemon_exists(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->ndaemons; i++)
		if (!strcmp(c->daemons[i].name, name))
			return true;
	return false;
}

static void parse_fail(struct parse_state *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void parse_fail(struct parse_state *st, const char *fmt, ...)
{
	va_list ap;
	if (st->err_line)
		return; /* the first error is the one worth reading */
	st->err_line = st->line;
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

/* Section headers are checked here because inih only reports sections to
 * handlers through their keys, and an empty unknown section must fail too. */
static void check_section_line(struct parse_state *st, const char *line)
{
	char buf[256];
	const char *end = strchr(line, ']');
	if (!end)
		return; /* inih reports the syntax error */
	size_t n = (size_t)(end - line - 1);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, line + 1, n);
	buf[n] = '\0';
	char kind[64], name[200];
	st->sect = SECT_BAD;
	if (section_split(buf, kind, sizeof(kind), name, sizeof(name))) {
		parse_fail(st, "bad section header [%s] (expected [forq], [job \"Class\"], "
			   "[cron \"name\"] or [daemon \"name\"])",
			   util_trim(buf));
		return;
	}
	if (!strcmp(kind, "forq") && !name[0]) {
		if (st->in_section)
			parse_fail(st, "section [forq] appears twice");
		st->in_section = true;
		st->sect = SECT_FORQ;
	} else if (!strcmp(kind, "job") && name[0]) {
		struct config *c = st->c;
		if (job_find_mut(c, name)) {
			parse_fail(st, "section [job \"%s\"] appears twice", name);
			return;
		}
		st->sect = SECT_JOB;
		st->idx = c->njobs;
		c->jobs = xrealloc(c->jobs, (c->njobs + 1) * sizeof(*c->jobs));
		c->jobs[c->njobs] = (struct config_job){
			.name = xstrdup(name), .retry = -1, .unique_ttl = 3600};
		c->njobs++;
	} else if (!strcmp(kind, "cron") && name[0]) {
		struct config *c = st->c;
		if (!entry_name_is_valid(name)) {
			parse_fail(st, "bad cron name '%s' (up to 100 letters, digits, '_', '-', '.', ':', '@')",
				   name);
			return;
		}
		if (cron_exists(c, name)) {
			parse_fail(st, "section [cron \"%s\"] appears twice", name);
			return;
		}
		st->sect = SECT_CRON;
		st->idx = c->ncrons;
		c->crons = xrealloc(c->crons, (c->ncrons + 1) * sizeof(*c->crons));
		c->crons[c->ncrons] = (struct config_cron){.name = xstrdup(name), .line = st->line};
		c->ncrons++;
	} else if (!strcmp(kind, "daemon") && name[0]) {
		struct config *c = st->c;
		if (!entry_name_is_valid(name)) {
			parse_fail(st,
				   "bad daemon name '%s' (up to 100 letters, digits, '_', '-', '.', ':', '@')",
				   name);
			return;
		}
		if (daemon_exists(c, name)) {
			parse_fail(st, "section [daemon \"%s\"] appears twice", name);
			return;
		}
		st->sect = SECT_DAEMON;
		st->idx = c->ndaemons;
		c->daemons = xrealloc(c->daemons, (c->ndaemons + 1) * sizeof(*c->daemons));
		c->daemons[c->ndaemons] = (struct config_daemon){
			.name = xstrdup(name), .line = st->line, .stop_timeout = 10};
		c->ndaemons++;
	} else {
		parse_fail(st, "unknown section [%s]", util_trim(buf));
	}
	st->seen_keys = 0;
}

static char *parse_reader(char *str, int num, void *stream)
{
	struct parse_state *st = stream;
	size_t len = strcspn(st->p, "\n");
	if (!*st->p)
		return NULL;
	st->line++;
	if (len >= (size_t)num - 1) {
		parse_fail(st, "line longer than %d characters", num - 2);
		str[0] = '\0'; /* an empty line keeps inih in step */
	} else {
		/* Leading blanks are dropped: inih would read an indented line as
		 * the continuation of the previous value, and forq has no values
		 * that span lines, so indentation is only layout here. */
		const char *t = st->p;
		while (t < st->p + len && (*t == ' ' || *t == '\t'))
			t++;
		memcpy(str, t, len - (size_t)(t - st->p));
		str[len - (size_t)(t - st->p)] = '\0';
		if (*str == '[')
			check_section_line(st, str);
	}
	st->p += len;
	if (*st->p == '\n')
		st->p++;
	return str;
}

/* A key of a [job], [cron] or [daemon] section: each key once, then the
 * section's own setter. */
static void named_section_key(struct parse_state *st, const char *key, const char *value)
{
	const char *const *keys, *kind, *name;
	size_t nkeys;
	char err[512];
	switch (st->sect) {
	case SECT_JOB:
		keys = job_keys, nkeys = ARRAY_SIZE(job_keys), kind = "job";
		name = st->c->jobs[st->idx].name;
		break;
	case SECT_CRON:
		keys = cron_keys, nkeys = ARRAY_SIZE(cron_keys), kind = "cron";
		name = st->c->crons[st->idx].name;
		break;
	default:
		keys = daemon_keys, nkeys = ARRAY_SIZE(daemon_keys), kind = "daemon";
		name = st->c->daemons[st->idx].name;
		break;
	}
	for (unsigned i = 0; i < nkeys; i++)
		if (!strcmp(key, keys[i])) {
			if (st->seen_keys & (1u << i)) {
				parse_fail(st, "duplicate key '%s' in [%s \"%s\"]", key, kind, name);
				return;
			}
			st->seen_keys |= 1u << i;
		}
	int rc = st->sect == SECT_JOB	 ? job_set(&st->c->jobs[st->idx], key, value, err, sizeof(err))
		 : st->sect == SECT_CRON ? cron_set(&st->c->crons[st->idx], key, value, err, sizeof(err))
					 : daemon_set(&st->c->daemons[st->idx], key, value, err, sizeof(err));
	if (rc)
		parse_fail(st, "%s", err);
}

static int parse_handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse_state *st = user;
	char err[512];
	const struct option_def *d;

	/* The section comes from our reader, not from inih, whose copy of a
	 * long section name is cut at 50 bytes. */
	(void)section;
	if (st->sect == SECT_NONE) {
		parse_fail(st, "'%s' is outside any section; put it under [forq]", key);
		return 1;
	}
	if (st->sect == SECT_BAD)
		return 1; /* already reported by check_section_line */
	if (st->sect == SECT_JOB || st->sect == SECT_CRON || st->sect == SECT_DAEMON) {
		named_section_key(st, key, value);
		return 1;
	}
	if (!(d = option_find(key))) {
		parse_fail(st, "unknown key '%s' in [forq]", key);
		return 1;
	}
	if (st->seen[d - option_table]) {
		parse_fail(st, "duplicate key '%s' in [forq]", key);
		return 1;
	}
	st->seen[d - option_table] = true;
	if (d->set(st->c, d, value, err, sizeof(err)))
		parse_fail(st, "%s", err);
	return 1; /* errors are ours to report, with our message */
}

int config_parse_string(struct config *c, const char *text, const char *name,
			struct config_error *err)
{
	struct parse_state st = {.c = c, .name = name, .p = text, .first_cron = c->ncrons,
				 .first_daemon = c->ndaemons};
	int rc = ini_parse_stream(parse_reader, &st, parse_handler, &st);
	if (rc < 0) {
		snprintf(err->where, sizeof(err->where), "%s", name);
		snprintf(err->msg, sizeof(err->msg), "cannot parse (out of memory)");
		return -1;
	}
	if (rc > 0 && (!st.err_line || rc < st.err_line)) {
		st.err_line = rc;
		snprintf(st.err, sizeof(st.err), "syntax error: expected 'key = value' or [section]");
	}
	/* Whole-section checks, reported at the section's header. */
	for (size_t i = st.first_cron; !st.err_line && i < c->ncrons; i++)
		if (cron_check(&c->crons[i], st.err, sizeof(st.err)))
			st.err_line = c->crons[i].line;
	for (size_t i = st.first_daemon; !st.err_line && i < c->ndaemons; i++)
		if (daemon_check(&c->daemons[i], st.err, sizeof(st.err)))
			st.err_line = c->daemons[i].line;
	if (!st.err_line)
		return 0;
	snprintf(err->where, sizeof(err->where), "%s:%d", name, st.err_line);
	snprintf(err->msg, sizeof(err->msg), "%s", st.err);
	return -1;
}

char *config_read_file(const char *path, struct config_error *err)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0, cap = 0;
	if (!f)
		goto out_err;
	for (;;) {
		if (cap - len < 4096)
			text = xrealloc(text, cap = cap ? cap * 2 : 8192);
		size_t got = fread(text + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(text);
		fclose(f);
		goto out_err;
	}
	fclose(f);
	text[len] = '\0';
	if (strlen(text) != len) {
		free(text);
		snprintf(err->where, sizeof(err->where), "%s:0", path);
		snprintf(err->msg, sizeof(err->msg), "file contains a NUL byte");
		return NULL;
	}
	return text;
out_err:
	snprintf(err->where, sizeof(err->where), "%s:0", path);
	snprintf(err->msg, sizeof(err->msg), "cannot read: %s", strerror(errno));
	return NULL;
}

int config_parse_file(struct config *c, const char *path, struct config_error *err)
{
	char *text = config_read_file(path, err);
	if (!text)
		return -1;
	int rc = config_parse_string(c, text, path, err);
	free(text);
	if (!rc) {
		free(c->path);
		c->path = xstrdup(path);
	}
	return rc;
}

char *config_queues_string(const struct config *c)
{
	char *s = xstrdup("");
	for (size_t i = 0; i < c->nqueues; i++) {
		char *t = xasprintf("%s%s%s:%d", s, i ? ", " : "", c->queues[i].name,
				    c->queues[i].weight);
		free(s);
		s = t;
	}
	return s;
}
