/* cronplan: due ticks and catch-up, computed from the newest due tick
 * backwards with cronexpr_prev so that the work is bounded by what is
 * pushed, never by how long the leader was away. */
#include "cronplan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int cronplan_init(struct cronplan *p, const struct config_cron *e, char *err, size_t errlen)
{
	char why[256];
	const char *zone = e->timezone ? e->timezone : "UTC";
	memset(p, 0, sizeof(*p));
	if (!(p->expr = cronexpr_parse(e->schedule, why, sizeof(why)))) {
		util_seterr(err, errlen, "schedule '%s': %s", e->schedule, why);
		return -1;
	}
	if (!(p->zone = tz_load(zone, why, sizeof(why)))) {
		util_seterr(err, errlen, "timezone: %s", why);
		cronexpr_free(p->expr);
		p->expr = NULL;
		return -1;
	}
	/* A change of any of these is a new entry: it starts from now. The
	 * catch-up policy and overlap rule are not part of it: changing them
	 * must not lose the watermark. */
	p->spec = xasprintf("%s|%s|%s|%s|%s|%s", e->schedule, zone, e->job_class,
			    e->args ? e->args : "[]", e->queue ? e->queue : "default",
			    e->retry ? e->retry : "true");
	return 0;
}

void cronplan_fini(struct cronplan *p)
{
	cronexpr_free(p->expr);
	tz_free(p->zone);
	free(p->spec);
	memset(p, 0, sizeof(*p));
}

void cronplan_jid(const char *name, int64_t tick, char out[25])
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		h ^= *s;
		h *= 1099511628211ULL;
	}
	snprintf(out, 25, "%016llx%08llx", (unsigned long long)h,
		 (unsigned long long)((uint64_t)tick & 0xffffffffULL));
}

/* Due ticks in (wm, newest] not pushed, counted forwards from wm. */
static long count_before(const struct cronplan *p, int64_t wm, int64_t before)
{
	long n = 0;
	for (int64_t t = cronexpr_next(p->expr, p->zone, wm); t >= 0 && t < before;
	     t = cronexpr_next(p->expr, p->zone, t))
		if (++n == CRON_COUNT_MAX)
			break;
	return n;
}

size_t cronplan_due(const struct cronplan *p, enum config_catch_up policy, int64_t wm,
		    double now, int64_t *ticks, int64_t *newest, long *skipped)
{
	int64_t at = (int64_t)floor(now);
	int64_t t = cronexpr_prev(p->expr, p->zone, at);
	size_t n = 0;

	*skipped = 0;
	*newest = wm;
	if (t < 0 || t <= wm)
		return 0;
	*newest = t;
	if (policy == CATCH_UP_NONE && now - (double)t > CRON_ON_TIME) {
		*skipped = count_before(p, wm, t) + 1;
		return 0;
	}
	ticks[n++] = t;
	if (policy == CATCH_UP_ALL) {
		while (n < CRON_CATCH_UP_MAX) {
			int64_t prev = cronexpr_prev(p->expr, p->zone, ticks[n - 1] - 1);
			if (prev < 0 || prev <= wm)
				break;
			ticks[n++] = prev;
		}
		/* oldest first: the order they would have run in */
		for (size_t i = 0; i < n / 2; i++) {
			int64_t x = ticks[i];
			ticks[i] = ticks[n - 1 - i];
			ticks[n - 1 - i] = x;
		}
	}
	*skipped = count_before(p, wm, ticks[0]);
	return n;
}
