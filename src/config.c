/* config: table-driven INI parsing on inih. Every option is one row of
 * option_table; a row names its parser, range and default, so the file, the
 * environment and the command line are validated by the same code. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hostport.h"
#include "keys.h"
#include "rdsurl.h"
#include "util.h"
#include "config_int.h"

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
	if (strncmp(v, "redis://", 8) && strncmp(v, "rediss://", 9) && strncmp(v, "unix://", 7) &&
	    strncmp(v, "redis+sentinel://", 17) && strncmp(v, "rediss+sentinel://", 18)) {
		util_seterr(err, n, "redis_url must start with redis://, rediss://, unix:// or "
				    "redis+sentinel://");
		return -1;
	}
	return set_string(c, d, v, err, n);
}

/* http_listen: checked here so a bad address names its file and line. */
static int set_http_listen(struct config *c, const struct option_def *d, const char *v,
			   char *err, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char why[256];
	if (*v && hostport_parse(v, &ss, &len, why, sizeof(why))) {
		util_seterr(err, n, "http_listen: %s", why);
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
int config_split_list(const char *v, int (*fn)(void *ctx, const char *item, char *err, size_t n),
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

bool config_queue_name_is_valid(const char *s)
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
	if (!config_queue_name_is_valid(name)) {
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
	if (config_split_list(v, add_queue, c, err, n))
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
	return config_split_list(v, add_plugin, c, err, n);
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
	{"tls_ca_file", set_string, OFF(tls_ca_file), 0, 0, ""},
	{"tls_cert_file", set_string, OFF(tls_cert_file), 0, 0, ""},
	{"tls_key_file", set_string, OFF(tls_key_file), 0, 0, ""},
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
	{"http_listen", set_http_listen, OFF(http_listen), 0, 0, ""},
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
	free(c->tls_ca_file);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free_queues(c);
	free(c->tag);
	free_plugins(c);
	free(c->user);
	free(c->environment);
	free(c->pidfile);
	free(c->http_listen);
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
		if (!config_entry_name_is_valid(name)) {
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
		if (!config_entry_name_is_valid(name)) {
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
	int rc = st->sect == SECT_JOB	 ? config_job_set(&st->c->jobs[st->idx], key, value, err, sizeof(err))
		 : st->sect == SECT_CRON ? config_cron_set(&st->c->crons[st->idx], key, value, err, sizeof(err))
					 : config_daemon_set(&st->c->daemons[st->idx], key, value, err, sizeof(err));
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
		if (config_cron_check(&c->crons[i], st.err, sizeof(st.err)))
			st.err_line = c->crons[i].line;
	for (size_t i = st.first_daemon; !st.err_line && i < c->ndaemons; i++)
		if (config_daemon_check(&c->daemons[i], st.err, sizeof(st.err)))
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

int config_rdsurl(const struct config *c, struct rdsurl *u, char *err, size_t n)
{
	char why[512];
	if (rdsurl_parse(c->redis_url, u, why, sizeof(why))) {
		util_seterr(err, n, "redis_url: %s", why);
		return -1;
	}
	if (c->sentinel_password)
		util_strlcpy(u->sentinel_password, c->sentinel_password,
			     sizeof(u->sentinel_password));
	return rdsurl_set_tls(u, c->tls_ca_file, c->tls_cert_file, c->tls_key_file, err, n);
}
