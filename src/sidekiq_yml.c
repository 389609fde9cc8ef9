/* sidekiq_yml: libyaml's document loader, then one pass over the merged
 * top level. Sidekiq symbolizes every key, so "concurrency" and
 * ":concurrency" are the same key; plain scalars written as Ruby symbols
 * (":default") are read as their name, as Symbol#to_s gives it. */
#include "sidekiq_yml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "util.h"
#include "yamldoc.h"

struct entry {
	const char *key; /* without its ':' */
	yaml_node_t *value;
	int line;
};

struct yml {
	yaml_document_t doc;
	const char *name;
	struct entry *e;
	size_t n;
	sidekiq_yml_warn_fn warn;
	void *ctx;
	struct config_error *err;
};

static int fail(struct yml *y, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct yml *y, int line, const char *fmt, ...)
{
	va_list ap;
	snprintf(y->err->where, sizeof(y->err->where), "%s:%d", y->name, line);
	va_start(ap, fmt);
	vsnprintf(y->err->msg, sizeof(y->err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static void warn_at(struct yml *y, int line, const char *msg)
{
	char where[sizeof(y->err->where)];
	if (!y->warn)
		return;
	snprintf(where, sizeof(where), "%s:%d", y->name, line);
	y->warn(y->ctx, where, msg);
}

/* The scalar's text with a Ruby symbol's ':' taken off; NULL when node is
 * not a scalar. */
static const char *scalar(const yaml_node_t *node)
{
	const char *s;
	if (!node || node->type != YAML_SCALAR_NODE)
		return NULL;
	s = (const char *)node->data.scalar.value;
	if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && s[0] == ':' && s[1])
		s++;
	return s;
}

static bool is_null(const yaml_node_t *node)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
		if (!strcmp((const char *)node->data.scalar.value, nulls[i]))
			return true;
	return false;
}

/* Adds a key, or replaces it: a later one wins, as in a Ruby Hash (and as
 * Hash#merge lets the environment's section win). */
static void put(struct yml *y, const char *key, yaml_node_t *value, int line)
{
	for (size_t i = 0; i < y->n; i++)
		if (!strcmp(y->e[i].key, key)) {
			y->e[i] = (struct entry){key, value, line};
			return;
		}
	y->e = xrealloc(y->e, (y->n + 1) * sizeof(*y->e));
	y->e[y->n++] = (struct entry){key, value, line};
}

/* The pairs of a mapping into y->e. At the top level a mapping value is an
 * environment's section: the chosen one is returned in *env, others are
 * skipped without a word (they are for other environments). */
static int collect(struct yml *y, yaml_node_t *map, bool top, const char *environment,
                   yaml_node_t **env)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&y->doc, p->value);
		const char *key = scalar(k);
		if (!key)
			return fail(y, yamldoc_line(k), "a key must be a plain name");
		if (top && v->type == YAML_MAPPING_NODE) {
			if (environment && !strcmp(key, environment))
				*env = v;
			continue;
		}
		put(y, key, v, yamldoc_line(k));
	}
	return 0;
}

/* Ruby's String#to_i: leading digits, 0 without any. */
static long ruby_to_i(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return end == s ? 0 : v;
}

static int set(struct yml *y, struct config *c, const char *key, const char *value, int line)
{
	char why[512];
	if (config_set(c, NULL, key, value, why, sizeof(why)))
		return fail(y, line, "%s", why);
	return 0;
}

/* One queue: "name" or [name] or [name, weight], as CLI#parse_queue. */
static int queue_item(struct yml *y, yaml_node_t *item, char **list, struct config *probe)
{
	const char *name = scalar(item), *weight = NULL;
	char why[512];
	if (item->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t *it = item->data.sequence.items.start;
		size_t n = (size_t)(item->data.sequence.items.top - it);
		name = n >= 1 ? scalar(yaml_document_get_node(&y->doc, it[0])) : NULL;
		weight = n == 2 ? scalar(yaml_document_get_node(&y->doc, it[1])) : NULL;
		if (n < 1 || n > 2 || (n == 2 && !weight))
			return fail(y, yamldoc_line(item), "a queue is 'name' or [name, weight]");
	}
	if (!name)
		return fail(y, yamldoc_line(item), "a queue is 'name' or [name, weight]");
	if (name[strcspn(name, ", \t:")]) /* forq's list syntax would split it */
		return fail(y, yamldoc_line(item),
		            "bad queue name '%s' (letters, digits, '_', '-' "
		            "and '.')",
		            name);
	long w = weight ? ruby_to_i(weight) : 0;
	/* Sidekiq repeats a queue max(weight, 1) times; a weight over 0 makes
	 * the order random, which forq's "name:weight" says the same way. */
	char *entry = w > 0 ? xasprintf("%s:%ld", name, w) : xstrdup(name);
	char *joined = *list ? xasprintf("%s, %s", *list, entry) : xstrdup(entry);
	int rc = config_set(probe, NULL, "queues", joined, why, sizeof(why));
	if (rc) /* a bad name, a bad weight, or listed twice (Sidekiq refuses that too) */
		rc = fail(y, yamldoc_line(item), "%s", why);
	free(entry);
	free(*list);
	*list = joined;
	return rc;
}

static int map_queues(struct yml *y, struct config *c, const struct entry *e)
{
	char *list = NULL;
	int rc = 0;
	if (is_null(e->value))
		return 0;
	if (e->value->type != YAML_SEQUENCE_NODE)
		return fail(y, e->line, "':queues:' must be a list");
	struct config *probe = config_new(); /* each item checked at its own line */
	for (yaml_node_item_t *it = e->value->data.sequence.items.start;
	     !rc && it < e->value->data.sequence.items.top; it++)
		rc = queue_item(y, yaml_document_get_node(&y->doc, *it), &list, probe);
	config_free(probe);
	if (!rc && list)
		rc = set(y, c, "queues", list, e->line);
	free(list);
	return rc;
}

/* Sidekiq's key, the [forq] key it becomes ("" = known, nothing to do). */
static const struct {
	const char *yml, *forq;
} map[] = {
    {"concurrency", "processes"},
    {"timeout", "shutdown_timeout"},
    {"tag", "tag"},
    {"require", "require"},
    {"strict", ""}, /* Sidekiq itself drops it: the weights decide */
};

static int map_entry(struct yml *y, struct config *c, const struct entry *e)
{
	char msg[512];
	if (!strcmp(e->key, "queues"))
		return map_queues(y, c, e);
	if (!strcmp(e->key, "verbose")) {
		bool on;
		if (is_null(e->value))
			return 0;
		if (!scalar(e->value) || util_parse_bool(scalar(e->value), &on))
			return fail(y, e->line, "':verbose:' must be true or false");
		return on ? set(y, c, "log_level", "debug", e->line) : 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (strcmp(e->key, map[i].yml))
			continue;
		if (!*map[i].forq || is_null(e->value))
			return 0;
		if (!scalar(e->value))
			return fail(y, e->line, "':%s:' must be a single value", e->key);
		return set(y, c, map[i].forq, scalar(e->value), e->line);
	}
	snprintf(msg, sizeof(msg), "':%s:' is not a setting forq uses; ignored", e->key);
	warn_at(y, e->line, msg);
	return 0;
}

int sidekiq_yml_apply(struct config *c, const char *text, const char *name, const char *environment,
                      sidekiq_yml_warn_fn warn, void *ctx, struct config_error *err)
{
	struct yml y = {.name = name, .warn = warn, .ctx = ctx, .err = err};
	yaml_node_t *root, *env = NULL;
	int rc;
	/* forq reads the file as it is; ERB would need Ruby to run. */
	if (yamldoc_load(&y.doc, text, strlen(text), name,
			 "forq reads the file as plain YAML; write the value itself", err))
		return -1;
	root = yaml_document_get_root_node(&y.doc);
	if (!root || is_null(root)) {
		rc = 0; /* an empty file: Sidekiq's `|| {}` */
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		rc = fail(&y, yamldoc_line(root), "expected ':key: value' lines at the top level");
		goto out;
	}
	rc = collect(&y, root, true, environment, &env);
	if (!rc && env)
		rc = collect(&y, env, false, NULL, NULL);
	for (size_t i = 0; !rc && i < y.n; i++)
		rc = map_entry(&y, c, &y.e[i]);
out:
	free(y.e);
	yaml_document_delete(&y.doc);
	return rc;
}

/* .yml/.yaml, or YAML's document start or a Sidekiq ":key:" first. */
bool sidekiq_yml_is_yaml(const char *path, const char *text)
{
	const char *dot = path ? strrchr(path, '.') : NULL;
	if (dot && (!strcasecmp(dot, ".yml") || !strcasecmp(dot, ".yaml")))
		return true;
	for (const char *p = text; p && *p;) {
		p += strspn(p, " \t\r\n");
		if (*p == '#') {
			p += strcspn(p, "\n");
			continue;
		}
		return !strncmp(p, "---", 3) || (p[0] == ':' && p[1] && p[1] != ' ');
	}
	return false;
}
