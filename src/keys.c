/* keys: names only; no I/O. The namespace is the one piece of state here:
 * set once at startup (keys.h says why it is process-wide). */
#include "keys.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

static const char *const fixed_names[KEYS_NFIXED] = {
#define KEYS_NAME_(id, name) name,
    KEYS_FIXED(KEYS_NAME_)
#undef KEYS_NAME_
};

/* "<namespace>:" or "" (prefix), and the fixed names with it; fixed[] is
 * NULL without a namespace. */
static struct {
	char *name;
	char *prefix;
	size_t len;
	char *fixed[KEYS_NFIXED];
} ns;

static void clear_namespace(void)
{
	free(ns.name);
	free(ns.prefix);
	ns.name = ns.prefix = NULL;
	ns.len = 0;
	for (size_t i = 0; i < KEYS_NFIXED; i++) {
		free(ns.fixed[i]);
		ns.fixed[i] = NULL;
	}
}

void keys_set_namespace(const char *name)
{
	clear_namespace();
	if (!name || !*name)
		return;
	ns.name = xstrdup(name);
	ns.prefix = xasprintf("%s:", name);
	ns.len = strlen(ns.prefix);
	for (size_t i = 0; i < KEYS_NFIXED; i++)
		ns.fixed[i] = xasprintf("%s%s", ns.prefix, fixed_names[i]);
}

const char *keys_namespace(void)
{
	return ns.name ? ns.name : "";
}

bool keys_namespace_is_valid(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > KEYS_NAMESPACE_MAX)
		return false;
	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		if (*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

const char *keys_fixed(enum keys_id id)
{
	return ns.fixed[id] ? ns.fixed[id] : fixed_names[id];
}

const char *keys_strip(const char *key)
{
	if (ns.len && !strncmp(key, ns.prefix, ns.len))
		return key + ns.len;
	return key;
}

char *keys_build(const char *fmt, ...)
{
	va_list ap;
	char *name, *key;
	va_start(ap, fmt);
	if (vasprintf(&name, fmt, ap) < 0)
		abort(); /* out of memory, as xasprintf */
	va_end(ap);
	if (!ns.len)
		return name;
	key = xasprintf("%s%s", ns.prefix, name);
	free(name);
	return key;
}

char *keys_queue(const char *name)
{
	return keys_build("queue:%s", name);
}

char *keys_working(const char *identity, int lane)
{
	return keys_build("forq:working:%s:%d", identity, lane);
}

char *keys_process(const char *identity)
{
	return keys_build("%s", identity);
}

char *keys_work(const char *identity)
{
	return keys_build("%s:work", identity);
}

char *keys_workers(const char *identity)
{
	return keys_build("%s:workers", identity);
}

char *keys_signals(const char *identity)
{
	return keys_build("%s-signals", identity);
}

char *keys_node(const char *identity)
{
	return keys_build("forq:node:%s", identity);
}

char *keys_cron(const char *name)
{
	return keys_build("forq:cron:%s", name);
}

char *keys_sidekiq_cron_member(const char *name)
{
	return xasprintf("cron_job:%s", name);
}

char *keys_sidekiq_cron_job(const char *name)
{
	return keys_build("cron_job:%s", name);
}

char *keys_sidekiq_cron_enqueued(const char *name)
{
	return keys_build("cron_job:%s:enqueued", name);
}

char *keys_sidekiq_cron_jids(const char *name)
{
	return keys_build("cron_job:%s:jid_history", name);
}

char *keys_daemon(const char *name)
{
	return keys_build("forq:daemon:%s", name);
}

char *keys_daemon_epoch(const char *name)
{
	return keys_build("forq:daemon:%s:epoch", name);
}

char *keys_daemon_runid(const char *name)
{
	return keys_build("forq:daemon:%s:runid", name);
}

char *keys_daemon_settle(const char *name)
{
	return keys_build("forq:daemon:%s:settle", name);
}

char *keys_daemon_cooldown(const char *name, const char *identity)
{
	return keys_build("forq:daemon:%s:cooldown:%s", name, identity);
}

char *keys_lost(const char *jid)
{
	/* once per job on the hot path: no printf */
	static const char part[] = "forq:lost:";
	size_t n = strlen(jid), p = sizeof(part) - 1;
	char *k = xmalloc(ns.len + p + n + 1);
	if (ns.len)
		memcpy(k, ns.prefix, ns.len);
	memcpy(k + ns.len, part, p);
	memcpy(k + ns.len + p, jid, n + 1);
	return k;
}

/* Glob characters must match themselves. */
static void glob_escape(char **p, const char *s)
{
	for (; *s; s++) {
		if (strchr("*?[]\\", *s))
			*(*p)++ = '\\';
		*(*p)++ = *s;
	}
}

char *keys_working_pattern(const char *identity)
{
	static const char part[] = "forq:working:";
	char *pattern = xmalloc(2 * (ns.len + strlen(identity)) + sizeof(part) + 2), *p = pattern;
	if (ns.len)
		glob_escape(&p, ns.prefix);
	memcpy(p, part, sizeof(part) - 1);
	p += sizeof(part) - 1;
	glob_escape(&p, identity);
	memcpy(p, ":*", 3);
	return pattern;
}

char *keys_stat_daily(const char *total_key, double now)
{
	time_t t = (time_t)now;
	struct tm tm;
	char day[16];
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	return xasprintf("%s:%s", total_key, day);
}

static struct tm keys_utc(double now)
{
	time_t t = (time_t)now;
	struct tm tm;
	gmtime_r(&t, &tm);
	return tm;
}

char *keys_metrics_v7(double now)
{
	struct tm tm = keys_utc(now);
	return keys_build("j|%04d%02d%02d|%d:%d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	                 tm.tm_hour, tm.tm_min);
}

char *keys_metrics_v8(double now)
{
	struct tm tm = keys_utc(now);
	return keys_build("j|%02d%02d%02d|%d:%02d", tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday,
	                 tm.tm_hour, tm.tm_min);
}

char *keys_metrics_v8_rollup(double now)
{
	struct tm tm = keys_utc(now);
	return keys_build("j|%02d%02d%02d|%d:%d", tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday,
	                 tm.tm_hour, tm.tm_min / 10);
}

char *keys_metrics_hist_v7(const char *job_class, double now)
{
	struct tm tm = keys_utc(now);
	return keys_build("%s-%02d-%02d:%d", job_class, tm.tm_mday, tm.tm_hour, tm.tm_min);
}

char *keys_metrics_hist_v8(const char *job_class, double now)
{
	struct tm tm = keys_utc(now);
	return keys_build("h|%s-%d-%d:%d", job_class, tm.tm_mday, tm.tm_hour, tm.tm_min);
}
