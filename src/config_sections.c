/* config_sections: the named sections of the configuration file, [job X],
 * [cron X] and [daemon X]: each key's parser and each entry's final check,
 * and the exec command splitter they share with the rest. config.c reads
 * the file and owns [forq]; config_int.h is what the two share. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "cronexpr.h"
#include "job.h"
#include "util.h"
#include "config_int.h"

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
	if (config_split_list(v, add_unique_arg, j, err, n))
		return -1;
	if (!j->nunique_args) {
		util_seterr(err, n, "unique_args must list argument positions (0 = the first)");
		return -1;
	}
	return 0;
}

/* Names of cron entries and daemons end up in Redis keys and log lines. */
bool config_entry_name_is_valid(const char *s)
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
int config_cron_set(struct config_cron *e, const char *key, const char *v, char *err, size_t n)
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
		if (!config_queue_name_is_valid(v)) {
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
int config_cron_check(const struct config_cron *e, char *err, size_t n)
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

int config_daemon_set(struct config_daemon *d, const char *key, const char *v, char *err,
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

int config_daemon_check(const struct config_daemon *d, char *err, size_t n)
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
int config_job_set(struct config_job *j, const char *key, const char *v, char *err, size_t n)
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
