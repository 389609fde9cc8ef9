/* keys: names only; no I/O. */
#include "keys.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

char *keys_queue(const char *name)
{
	return xasprintf(KEY_QUEUE_PREFIX "%s", name);
}

char *keys_working(const char *identity, int lane)
{
	return xasprintf("forq:working:%s:%d", identity, lane);
}

char *keys_work(const char *identity)
{
	return xasprintf("%s:work", identity);
}

char *keys_workers(const char *identity)
{
	return xasprintf("%s:workers", identity);
}

char *keys_signals(const char *identity)
{
	return xasprintf("%s-signals", identity);
}

char *keys_node(const char *identity)
{
	return xasprintf(KEY_NODE_PREFIX "%s", identity);
}

char *keys_cron(const char *name)
{
	return xasprintf("forq:cron:%s", name);
}

char *keys_sidekiq_cron_member(const char *name)
{
	return xasprintf("cron_job:%s", name);
}

char *keys_sidekiq_cron_job(const char *name)
{
	return xasprintf("cron_job:%s", name);
}

char *keys_sidekiq_cron_enqueued(const char *name)
{
	return xasprintf("cron_job:%s:enqueued", name);
}

char *keys_sidekiq_cron_jids(const char *name)
{
	return xasprintf("cron_job:%s:jid_history", name);
}

char *keys_daemon(const char *name)
{
	return xasprintf("forq:daemon:%s", name);
}

char *keys_daemon_epoch(const char *name)
{
	return xasprintf("forq:daemon:%s:epoch", name);
}

char *keys_daemon_runid(const char *name)
{
	return xasprintf("forq:daemon:%s:runid", name);
}

char *keys_daemon_settle(const char *name)
{
	return xasprintf("forq:daemon:%s:settle", name);
}

char *keys_daemon_cooldown(const char *name, const char *identity)
{
	return xasprintf("forq:daemon:%s:cooldown:%s", name, identity);
}

char *keys_lost(const char *jid)
{
	/* once per job on the hot path: no printf */
	size_t n = strlen(jid);
	char *k = xmalloc(sizeof("forq:lost:") + n);
	memcpy(k, "forq:lost:", sizeof("forq:lost:") - 1);
	memcpy(k + sizeof("forq:lost:") - 1, jid, n + 1);
	return k;
}

char *keys_working_pattern(const char *identity)
{
	/* Glob characters in a host name must match themselves. */
	char *esc = xmalloc(2 * strlen(identity) + 1), *p = esc;
	for (const char *s = identity; *s; s++) {
		if (strchr("*?[]\\", *s))
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	char *pattern = xasprintf("forq:working:%s:*", esc);
	free(esc);
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
