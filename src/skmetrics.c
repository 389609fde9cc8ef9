/* skmetrics: counting per class, and the arguments of the one call that
 * writes a flush. Bucket bounds are Sidekiq's metrics/shared.rb, the same
 * in 7.x and 8.x. */
#include "skmetrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"

static const long long bucket_bound[SKMETRICS_BUCKETS - 1] = {
    20,   30,   45,   65,    100,   150,   225,   335,   500,    750,    1100,   1700,   2500,
    3800, 5750, 8500, 13000, 20000, 30000, 45000, 65000, 100000, 150000, 225000, 335000,
};

int skmetrics_bucket(long long ms)
{
	for (int i = 0; i < SKMETRICS_BUCKETS - 1; i++)
		if (ms < bucket_bound[i])
			return i;
	return SKMETRICS_BUCKETS - 1;
}

/* A handful of classes per worker is usual: a linear search beats a hash
 * table here, and the last class found is tried first (batches of one
 * class). */
static struct skmetrics_class *skmetrics_find(struct skmetrics *m, const char *name)
{
	for (size_t i = m->n; i-- > 0;)
		if (!strcmp(m->classes[i].name, name))
			return &m->classes[i];
	if (m->n == SKMETRICS_MAX_CLASSES)
		return NULL;
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 8;
		m->classes = xrealloc(m->classes, m->cap * sizeof(*m->classes));
	}
	struct skmetrics_class *c = &m->classes[m->n++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	return c;
}

int skmetrics_record(struct skmetrics *m, const char *job_class, long long ms, bool failed)
{
	struct skmetrics_class *c = skmetrics_find(m, job_class);
	if (!c) {
		m->dropped++;
		return -1;
	}
	c->runs++;
	if (failed) {
		c->failures++;
		return 0;
	}
	if (ms < 0)
		ms = 0;
	c->successes++;
	c->ms += ms;
	c->hist[skmetrics_bucket(ms)]++;
	return 0;
}

bool skmetrics_is_empty(const struct skmetrics *m)
{
	return m->n == 0;
}

void skmetrics_clear(struct skmetrics *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->classes[i].name);
	m->n = 0;
	m->dropped = 0;
}

void skmetrics_free(struct skmetrics *m)
{
	skmetrics_clear(m);
	free(m->classes);
	memset(m, 0, sizeof(*m));
}

static const char *skmetrics_own(struct skmetrics_call *call, char *s)
{
	call->owned[call->nowned++] = s;
	return s;
}

/* "idx:count,..." for the buckets that counted something. */
static char *skmetrics_hist(const struct skmetrics_class *c)
{
	char *s = xmalloc(SKMETRICS_BUCKETS * 16 + 1);
	size_t len = 0;
	s[0] = '\0';
	for (int i = 0; i < SKMETRICS_BUCKETS; i++)
		if (c->hist[i])
			len += (size_t)sprintf(s + len, "%s%d:%u", len ? "," : "", i,
			                       (unsigned)c->hist[i]);
	return s;
}

void skmetrics_build(const struct skmetrics *m, double now, struct skmetrics_call *call)
{
	size_t nkeys = 3 + 2 * m->n, argc = nkeys + 2 + 5 * m->n, k = 0;
	call->argv = xcalloc(argc, sizeof(*call->argv));
	call->lens = xcalloc(argc, sizeof(*call->lens));
	call->owned = xcalloc(argc, sizeof(*call->owned));
	call->nowned = 0;
	call->argv[k++] = skmetrics_own(call, keys_metrics_v7(now));
	call->argv[k++] = skmetrics_own(call, keys_metrics_v8(now));
	call->argv[k++] = skmetrics_own(call, keys_metrics_v8_rollup(now));
	for (size_t i = 0; i < m->n; i++) {
		call->argv[k++] =
		    skmetrics_own(call, keys_metrics_hist_v7(m->classes[i].name, now));
		call->argv[k++] =
		    skmetrics_own(call, keys_metrics_hist_v8(m->classes[i].name, now));
	}
	call->argv[k++] = skmetrics_own(call, xasprintf("%d", SKMETRICS_TTL_SHORT));
	call->argv[k++] = skmetrics_own(call, xasprintf("%d", SKMETRICS_TTL_ROLLUP));
	for (size_t i = 0; i < m->n; i++) {
		const struct skmetrics_class *c = &m->classes[i];
		call->argv[k++] = c->name;
		call->argv[k++] = skmetrics_own(call, xasprintf("%lld", c->runs));
		call->argv[k++] = skmetrics_own(call, xasprintf("%lld", c->failures));
		/* Sidekiq writes <class>|ms only once a success was timed. */
		call->argv[k++] =
		    skmetrics_own(call, c->successes ? xasprintf("%lld", c->ms) : xstrdup(""));
		call->argv[k++] = skmetrics_own(call, skmetrics_hist(c));
	}
	for (size_t i = 0; i < k; i++)
		call->lens[i] = strlen(call->argv[i]);
	call->nkeys = (int)nkeys;
	call->argc = (int)k;
}

void skmetrics_call_free(struct skmetrics_call *call)
{
	for (size_t i = 0; i < call->nowned; i++)
		free(call->owned[i]);
	free(call->owned);
	free(call->argv);
	free(call->lens);
	memset(call, 0, sizeof(*call));
}
