/* schedule_yml: libyaml's document loader builds the node graph (aliases
 * resolved); each entry's mapping is read into a struct config_cron, its
 * values turned into JSON text the way Psych (YAML 1.1) types plain
 * scalars, and the entry checked by building one payload for it. */
#include "schedule_yml.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "cronexpr.h"
#include "cronpub.h"
#include "job.h"
#include "tz.h"
#include "util.h"
#include "yamldoc.h"

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

struct yml {
	yaml_document_t doc;
	struct config *c;
	const char *name;
	struct config_error *err;
	bool failed;
	bool klass_seen; /* in the entry being read */
};

static void fail(struct yml *y, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct yml *y, int line, const char *fmt, ...)
{
	va_list ap;
	if (y->failed)
		return;
	y->failed = true;
	snprintf(y->err->where, sizeof(y->err->where), "%s:%d", y->name, line);
	va_start(ap, fmt);
	vsnprintf(y->err->msg, sizeof(y->err->msg), fmt, ap);
	va_end(ap);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool is_plain(const yaml_node_t *n)
{
	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* Adds s and frees it. */
static void sb_take(struct util_buf *b, char *s)
{
	util_buf_adds(b, s);
	free(s);
}

static bool matches_all(const char *s, const char *set)
{
	return *s && strspn(s, set) == strlen(s);
}

/* A plain integer as Psych reads it (decimal with '_' separators), as JSON
 * digits; NULL when it is not one. Hex and octal forms are left as strings. */
static char *plain_int(const char *s)
{
	const char *p = s + (*s == '-' || *s == '+');
	if (!matches_all(p, "0123456789_") || !isdigit((unsigned char)*p) || (*p == '0' && p[1]))
		return NULL;
	struct util_buf b = {0};
	util_buf_adds(&b, *s == '-' ? "-" : "");
	for (; *p; p++)
		if (*p != '_') {
			char d[2] = {*p, 0};
			util_buf_adds(&b, d);
		}
	return util_buf_take(&b);
}

/* A plain float ("1.5", "-.5", "1e3", "1.0e-2"), written back in the
 * shortest form that reads as the same double; NULL when not one. */
static char *plain_float(const char *s)
{
	char *end;
	if (!strpbrk(s, ".eE") || !matches_all(s, "0123456789+-.eE_") || strchr(s, '_'))
		return NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return NULL;
	for (int prec = 1; prec <= 17; prec++) {
		char *out = xasprintf("%.*g", prec, v);
		if (strtod(out, NULL) == v) {
			if (!strpbrk(out, ".en")) { /* keep it a float, as Ruby prints it */
				char *t = xasprintf("%s.0", out);
				free(out);
				out = t;
			}
			return out;
		}
		free(out);
	}
	return NULL;
}

/* JSON text of a scalar typed as Psych would: null, booleans (YAML 1.1's
 * yes/no/on/off too), integers, floats, :symbols as their name, else a
 * string. Quoted scalars are strings. */
static char *scalar_json(const yaml_node_t *n)
{
	const char *s = scalar(n);
	char *v;
	if (!is_plain(n))
		return job_json_quote(s);
	if (!*s || !strcmp(s, "~") || !strcasecmp(s, "null"))
		return xstrdup("null");
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
		return xstrdup("true");
	if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
		return xstrdup("false");
	if ((v = plain_int(s)) || (v = plain_float(s)))
		return v;
	if (s[0] == ':' && s[1] && (isalpha((unsigned char)s[1]) || s[1] == '_'))
		return job_json_quote(s + 1);
	return job_json_quote(s);
}

static bool tag_is_ours(const yaml_node_t *n)
{
	return !n->tag || !strncmp((const char *)n->tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX));
}

static char *node_json(struct yml *y, const yaml_node_t *n, int depth);

static char *seq_json(struct yml *y, const yaml_node_t *n, int depth)
{
	struct util_buf b = {0};
	util_buf_adds(&b, "[");
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		char *v = node_json(y, yaml_document_get_node(&y->doc, *it), depth + 1);
		if (!v) {
			free(b.p);
			return NULL;
		}
		util_buf_adds(&b, it == n->data.sequence.items.start ? "" : ",");
		sb_take(&b, v);
	}
	util_buf_adds(&b, "]");
	return util_buf_take(&b);
}

static char *map_json(struct yml *y, const yaml_node_t *n, int depth)
{
	struct util_buf b = {0};
	util_buf_adds(&b, "{");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
		const char *ks = scalar(k);
		if (!ks) {
			fail(y, yamldoc_line(k), "a mapping key must be a plain value");
			free(b.p);
			return NULL;
		}
		char *v = node_json(y, yaml_document_get_node(&y->doc, p->value), depth + 1);
		if (!v) {
			free(b.p);
			return NULL;
		}
		util_buf_adds(&b, p == n->data.mapping.pairs.start ? "" : ",");
		sb_take(&b, job_json_quote(ks[0] == ':' && ks[1] && is_plain(k) ? ks + 1 : ks));
		util_buf_adds(&b, ":");
		sb_take(&b, v);
	}
	util_buf_adds(&b, "}");
	return util_buf_take(&b);
}

/* Any value as JSON text; NULL after fail() for what JSON cannot carry. */
static char *node_json(struct yml *y, const yaml_node_t *n, int depth)
{
	if (depth > 64) {
		fail(y, yamldoc_line(n), "value nested too deeply");
		return NULL;
	}
	if (!tag_is_ours(n)) {
		fail(y, yamldoc_line(n), "tag %s is not supported: forq turns values into JSON",
		     (const char *)n->tag);
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return scalar_json(n);
	case YAML_SEQUENCE_NODE:
		return seq_json(y, n, depth);
	case YAML_MAPPING_NODE:
		return map_json(y, n, depth);
	default:
		fail(y, yamldoc_line(n), "empty node");
		return NULL;
	}
}

/* The string value of a key, or NULL after fail(). */
static const char *want_string(struct yml *y, const yaml_node_t *v, const char *key)
{
	const char *s = scalar(v);
	if (!s || !tag_is_ours(v) || !*s)
		fail(y, yamldoc_line(v), "%s must be a non-empty string", key);
	return y->failed ? NULL : s;
}

/* sidekiq-cron's flags: true, or text matching /^(true|t|yes|y|1)$/i. */
static bool flag_value(const yaml_node_t *v)
{
	static const char *const yes[] = {"true", "t", "yes", "y", "1", "on"};
	const char *s = scalar(v);
	for (size_t i = 0; s && i < ARRAY_SIZE(yes); i++)
		if (!strcasecmp(s, yes[i]) && (i < 5 || is_plain(v)))
			return true;
	return false;
}

/* args: an array as is; a hash as [hash]; a string as the JSON it holds
 * (an array as is, anything else wrapped), else [string]; a scalar [x];
 * nothing []. */
static char *args_json(struct yml *y, const yaml_node_t *v)
{
	char *j;
	if (v->type == YAML_SEQUENCE_NODE)
		return node_json(y, v, 0);
	if (v->type == YAML_SCALAR_NODE && tag_is_ours(v)) {
		const char *s = scalar(v);
		char kind = job_json_kind(s);
		if (is_plain(v) && (!*s || !strcmp(s, "~") || !strcasecmp(s, "null")))
			return xstrdup("[]");
		if (kind == '[')
			return xstrdup(s);
		if (kind)
			return xasprintf("[%s]", s);
	}
	if (!(j = node_json(y, v, 0)))
		return NULL;
	char *out = xasprintf("[%s]", j);
	free(j);
	return out;
}

/* What reads as words rather than fields ("every 5 minutes", "@every 1h"). */
static bool looks_natural(const char *s)
{
	return !strchr(s, '*') && (isalpha((unsigned char)s[0]) || !strncmp(s, "@every", 6));
}

/* cron: 5 or 6 fields or a macro, optionally then an IANA zone. */
static void set_cron(struct yml *y, struct config_cron *e, const yaml_node_t *v)
{
	char why[256], fwhy[256], zwhy[256];
	const char *s = want_string(y, v, "cron");
	if (!s)
		return;
	/* a later cron (after a merged one) replaces it, zone included */
	free(e->schedule);
	free(e->timezone);
	e->schedule = e->timezone = NULL;
	struct cronexpr *x = cronexpr_parse(s, why, sizeof(why));
	if (x) {
		cronexpr_free(x);
		e->schedule = xstrdup(s);
		return;
	}
	char *buf = xstrdup(s), *copy = util_trim(buf), *sp = strrchr(copy, ' ');
	struct tz *z = NULL;
	if (sp) {
		*sp = '\0';
		x = cronexpr_parse(util_trim(copy), fwhy, sizeof(fwhy));
		z = tz_load(sp + 1, zwhy, sizeof(zwhy));
	}
	if (x && z) {
		e->schedule = xstrdup(util_trim(copy));
		e->timezone = xstrdup(sp + 1);
	} else if (looks_natural(s)) {
		fail(y, yamldoc_line(v),
		     "cron '%s': natural-language schedules are not supported; write 5 or 6 fields",
		     s);
	} else if (z) {
		fail(y, yamldoc_line(v), "cron '%s': %s", s, fwhy);
	} else if (x || (sp && strchr(sp + 1, '/'))) {
		fail(y, yamldoc_line(v), "cron '%s': time zone: %s", s, zwhy);
	} else {
		fail(y, yamldoc_line(v), "cron '%s': %s", s, why);
	}
	cronexpr_free(x);
	tz_free(z);
	free(buf);
}

static void set_status(struct yml *y, struct config_cron *e, const yaml_node_t *v)
{
	const char *s = want_string(y, v, "status");
	if (s && !strcmp(s, "enabled"))
		e->status = CRON_STATUS_ENABLED;
	else if (s && !strcmp(s, "disabled"))
		e->status = CRON_STATUS_DISABLED;
	else if (s)
		fail(y, yamldoc_line(v), "status must be enabled or disabled, not '%s'", s);
}

static void set_retry(struct yml *y, struct config_cron *e, const yaml_node_t *v)
{
	long l;
	const char *s = scalar(v);
	free(e->retry);
	e->retry = NULL;
	if (s && is_plain(v) && !util_parse_long(s, 0, 1000, &l))
		e->retry = xasprintf("%ld", l);
	else if (s && is_plain(v) && (!strcasecmp(s, "true") || !strcasecmp(s, "false")))
		e->retry = xstrdup(!strcasecmp(s, "true") ? "true" : "false");
	else
		fail(y, yamldoc_line(v), "retry must be true, false or a number from 0 to 1000");
}

/* The message: a mapping, or a string holding a JSON object. Its queue is
 * where the job goes (sidekiq-cron ignores queue: beside a message). */
static void set_message(struct yml *y, struct config_cron *e, const yaml_node_t *v)
{
	char *m = v->type == YAML_MAPPING_NODE ? node_json(y, v, 0)
	          : scalar(v)                  ? xstrdup(scalar(v))
	                                       : NULL;
	if (y->failed)
		return;
	if (!m || job_json_kind(m) != '{') {
		fail(y, yamldoc_line(v), "message must be a mapping or a JSON object");
		free(m);
		return;
	}
	free(e->message);
	e->message = m;
}

static char **string_field(struct config_cron *e, const char *key)
{
	return !strcmp(key, "class") || !strcmp(key, "klass") ? &e->job_class
	       : !strcmp(key, "queue")                        ? &e->queue
	       : !strcmp(key, "description")                  ? &e->description
	       : !strcmp(key, "queue_name_prefix")            ? &e->queue_name_prefix
	       : !strcmp(key, "queue_name_delimiter")         ? &e->queue_name_delimiter
	                                                      : NULL;
}

static void set_key(struct yml *y, struct config_cron *e, const char *key, const yaml_node_t *v)
{
	char **dst = string_field(e, key);
	if (dst) {
		const char *s = want_string(y, v, key);
		if (s && !strcmp(key, "queue") && !config_queue_name_is_valid(s))
			fail(y, yamldoc_line(v),
			     "bad queue name '%s' (letters, digits, '_', '-' and '.')", s);
		/* klass wins over class, as in sidekiq-cron */
		if (s && !y->failed && !(!strcmp(key, "class") && y->klass_seen)) {
			free(*dst);
			*dst = xstrdup(s);
		}
		if (!strcmp(key, "klass"))
			y->klass_seen = true;
	} else if (!strcmp(key, "cron")) {
		set_cron(y, e, v);
	} else if (!strcmp(key, "args")) {
		free(e->args);
		e->args = args_json(y, v);
	} else if (!strcmp(key, "status")) {
		set_status(y, e, v);
	} else if (!strcmp(key, "date_as_argument")) {
		e->date_as_argument = flag_value(v);
	} else if (!strcmp(key, "active_job")) {
		e->active_job = flag_value(v);
	} else if (!strcmp(key, "symbolize_args")) {
		e->symbolize_args = flag_value(v);
	} else if (!strcmp(key, "message")) {
		set_message(y, e, v);
	} else if (!strcmp(key, "retry")) {
		set_retry(y, e, v);
	} else if (strcmp(key, "name")) {
		fail(y, yamldoc_line(v),
		     "unknown key '%s' (cron, class, klass, queue, args, description, status, "
		     "date_as_argument, active_job, queue_name_prefix, queue_name_delimiter, "
		     "message, "
		     "retry, symbolize_args)",
		     key);
	}
}

/* Keys of an entry in order, a merge key (<<: *defaults) first so that the
 * entry's own keys win, as in Psych. */
static void read_pairs(struct yml *y, struct config_cron *e, const yaml_node_t *m, int depth)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top && !y->failed; p++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&y->doc, p->value);
		if (!scalar(k) || strcmp(scalar(k), "<<"))
			continue;
		if (v->type == YAML_MAPPING_NODE && depth < 8)
			read_pairs(y, e, v, depth + 1);
		else
			fail(y, yamldoc_line(v), "<< must merge a mapping");
	}
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top && !y->failed; p++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
		if (!scalar(k)) {
			fail(y, yamldoc_line(k), "entry keys must be plain names");
			return;
		}
		if (strcmp(scalar(k), "<<"))
			set_key(y, e, scalar(k), yaml_document_get_node(&y->doc, p->value));
	}
}

/* Where an entry of that name is already defined, or NULL. */
static char *defined_at(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->ncrons; i++)
		if (!strcmp(c->crons[i].name, name))
			return c->crons[i].source
			           ? xasprintf("%s:%d", c->crons[i].source, c->crons[i].line)
			           : xasprintf("[cron \"%s\"] at %s:%d", name,
			                       c->path ? c->path : "(config)", c->crons[i].line);
	return NULL;
}

static bool name_is_valid(const char *s)
{
	size_t n = strlen(s);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < ' ' || *p == 0x7f)
			return false;
	return n && n <= 200;
}

/* Whole-entry checks, then the entry joins c->crons. */
static void add_entry(struct yml *y, struct config_cron *e, const yaml_node_t *at)
{
	char err[256], *other;
	if (!e->schedule || !e->job_class) {
		fail(y, yamldoc_line(at), "entry '%s' needs %s", e->name,
		     !e->schedule ? "a cron" : "a class");
	} else if ((other = defined_at(y->c, e->name))) {
		fail(y, yamldoc_line(at), "entry '%s' is also defined by %s", e->name, other);
		free(other);
	} else {
		if (e->message) {
			free(e->queue);
			e->queue = job_json_get_string(e->message, "queue");
			if (e->queue && !config_queue_name_is_valid(e->queue))
				fail(y, yamldoc_line(at), "bad queue name '%s' in message", e->queue);
		}
		char *q = cronpub_queue(e);
		if (!y->failed && !config_queue_name_is_valid(q))
			fail(y, yamldoc_line(at), "bad queue name '%s' (with the ActiveJob prefix)", q);
		free(q);
		char *p = y->failed ? NULL : cronpub_payload(e, 0, "0", 0, err, sizeof(err));
		if (!p && !y->failed)
			fail(y, yamldoc_line(at), "entry '%s': %s", e->name, err);
		free(p);
	}
	if (y->failed) {
		config_cron_fini(e);
		return;
	}
	struct config *c = y->c;
	c->crons = xrealloc(c->crons, (c->ncrons + 1) * sizeof(*c->crons));
	c->crons[c->ncrons++] = *e;
}

static void read_entry(struct yml *y, const char *name, const yaml_node_t *key_node,
                       const yaml_node_t *m)
{
	struct config_cron e = {.line = yamldoc_line(key_node), .source = xstrdup(y->name)};
	if (m->type != YAML_MAPPING_NODE) {
		fail(y, yamldoc_line(m), "an entry must be a mapping of cron, class, ...");
		config_cron_fini(&e);
		return;
	}
	if (!name) {
		for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
		     p < m->data.mapping.pairs.top; p++)
			if (scalar(yaml_document_get_node(&y->doc, p->key)) &&
			    !strcmp(scalar(yaml_document_get_node(&y->doc, p->key)), "name"))
				name = scalar(yaml_document_get_node(&y->doc, p->value));
		if (!name) {
			fail(y, yamldoc_line(m), "an entry of the list needs a name");
			config_cron_fini(&e);
			return;
		}
	}
	if (!name_is_valid(name)) {
		fail(y, yamldoc_line(key_node), "bad entry name (1 to 200 printable characters)");
		config_cron_fini(&e);
		return;
	}
	e.name = xstrdup(name);
	y->klass_seen = false;
	read_pairs(y, &e, m, 0);
	add_entry(y, &e, key_node);
}

static void read_root(struct yml *y, const yaml_node_t *root)
{
	if (root->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
		     p < root->data.mapping.pairs.top && !y->failed; p++) {
			yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
			if (!scalar(k)) {
				fail(y, yamldoc_line(k), "entry names must be plain names");
				return;
			}
			read_entry(y, scalar(k), k, yaml_document_get_node(&y->doc, p->value));
		}
	} else if (root->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = root->data.sequence.items.start;
		     it < root->data.sequence.items.top && !y->failed; it++) {
			yaml_node_t *n = yaml_document_get_node(&y->doc, *it);
			read_entry(y, NULL, n, n);
		}
	} else if (!(scalar(root) && !*scalar(root))) {
		fail(y, yamldoc_line(root),
		     "a schedule is a mapping of entries by name, or a list of entries");
	}
}

int schedule_yml_parse_string(struct config *c, const char *text, size_t len, const char *name,
                              struct config_error *err)
{
	struct yml y = {.c = c, .name = name, .err = err};
	/* ERB is Ruby run by sidekiq-cron 1.9+; forq cannot run it. */
	if (yamldoc_load(&y.doc, text, len, name, "forq reads the schedule as plain YAML", err))
		return -1;
	size_t before = c->ncrons;
	yaml_node_t *root = yaml_document_get_root_node(&y.doc);
	if (root)
		read_root(&y, root);
	yaml_document_delete(&y.doc);
	if (!y.failed)
		return 0;
	/* all or nothing: the entries read before the error go too */
	while (c->ncrons > before)
		config_cron_fini(&c->crons[--c->ncrons]);
	return -1;
}

int schedule_yml_load(struct config *c, const char *path, struct config_error *err)
{
	char *full = NULL, *text = NULL;
	const char *slash = c->path ? strrchr(c->path, '/') : NULL;
	int rc = -1;
	if (path[0] != '/' && slash)
		full = xasprintf("%.*s/%s", (int)(slash - c->path), c->path, path);
	else
		full = xstrdup(path);
	if ((text = config_read_file(full, err)))
		rc = schedule_yml_parse_string(c, text, strlen(text), full, err);
	free(text);
	free(full);
	return rc;
}
