/* master_http: the http_listen endpoint. /metrics renders the master's own
 * tables (workers, restarts, daemons, cron) and what metrics.c keeps (job
 * counters, Redis gauges); /healthz and /readyz answer from the same
 * memory. Nothing here waits for Redis or a child. */
#include "master.h"

#include <stdio.h>
#include <stdlib.h>

#include "cron.h"
#include "daemon.h"
#include "health.h"
#include "http.h"
#include "metrics.h"
#include "procmem.h"
#include "util.h"
#include "master_int.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define PROM_TEXT "text/plain; version=0.0.4; charset=utf-8"

static long long rss_bytes(pid_t pid)
{
	long kb = procmem_rss_kb(pid);
	return kb > 0 ? (long long)kb * 1024 : 0;
}

static void write_workers(struct master *m, FILE *f)
{
	int by_state[SB_STOPPING + 1] = {0};
	for (struct child *c = m->children; c; c = c->next) {
		int32_t s = scoreboard_cell(&m->sb, c->cell)->state;
		if (s >= 0 && s <= SB_STOPPING)
			by_state[s]++;
	}
	metrics_family(f, "forq_workers", "gauge", "Worker processes, by scoreboard state.");
	for (int s = SB_BOOTING; s <= SB_STOPPING; s++)
		fprintf(f, "forq_workers{state=\"%s\"} %d\n", scoreboard_state_name(s),
		        by_state[s]);
	metrics_family(f, "forq_workers_target", "gauge", "Workers the master keeps (processes).");
	fprintf(f, "forq_workers_target %d\n", m->target);
	metrics_family(f, "forq_worker_restarts_total", "counter", "Workers replaced, by cause.");
	for (int i = 0; i < RESTART_CAUSES; i++)
		fprintf(f, "forq_worker_restarts_total{cause=\"%s\"} %llu\n",
		        master_restart_cause_name((enum restart_cause)i), m->restarts[i]);
	metrics_family(f, "forq_worker_rss_bytes", "gauge", "Resident set size of each worker.");
	for (struct child *c = m->children; c; c = c->next)
		fprintf(f, "forq_worker_rss_bytes{worker=\"%d\",pid=\"%ld\"} %lld\n", c->slot,
		        (long)c->pid, rss_bytes(c->pid));
	metrics_family(f, "forq_master_rss_bytes", "gauge", "Resident set size of the master.");
	fprintf(f, "forq_master_rss_bytes %lld\n", rss_bytes(m->pid));
}

static void write_daemon(void *priv, const char *name, bool running)
{
	FILE *f = priv;
	fputs("forq_daemon_running{daemon=", f);
	metrics_label(f, name);
	fprintf(f, "} %d\n", running);
}

static void write_cluster(struct master *m, FILE *f)
{
	unsigned long long fired, skipped;
	cron_counts(m->cron, &fired, &skipped);
	metrics_family(f, "forq_cron_ticks_fired_total", "counter",
	               "Cron ticks this node enqueued as leader.");
	fprintf(f, "forq_cron_ticks_fired_total %llu\n", fired);
	metrics_family(f, "forq_cron_ticks_skipped_total", "counter",
	               "Cron ticks this node skipped as leader (catch_up, overlap, disabled).");
	fprintf(f, "forq_cron_ticks_skipped_total %llu\n", skipped);
	metrics_family(f, "forq_daemon_running", "gauge",
	               "1 while the daemon's process runs on this node.");
	daemon_set_each(m->daemons, write_daemon, f);
}

static char *master_render_metrics(struct master *m, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	int lanes[2 * CONFIG_PROCESSES_MAX];
	size_t n = 0;
	for (struct child *c = m->children; c && n < ARRAY_SIZE(lanes); c = c->next)
		lanes[n++] = c->cell;
	metrics_family(f, "forq_build_info", "gauge", "The running forq's version.");
	fprintf(f, "forq_build_info{version=\"%s\"} 1\n", FORQ_VERSION);
	metrics_write_jobs(m->metrics, f, lanes, n);
	write_workers(m, f);
	metrics_write_redis(m->metrics, f, rds_async_is_up(m->rds), util_now_wall());
	write_cluster(m, f);
	fclose(f);
	return buf;
}

/* The rule of `forq health` (health.h), from the master's side: Redis is
 * reachable and the last heartbeat reached it recently. */
static bool master_is_healthy(const struct master *m)
{
	return rds_async_is_up(m->rds) &&
	       health_beat_is_fresh(metrics_last_beat(m->metrics), util_now_wall(), HEALTH_MAX_AGE);
}

/* Running (not quiet, not stopping), some worker ready, and every slot's
 * first worker has booted (a slot that restarts later does not count). */
static bool master_is_ready(const struct master *m)
{
	if (m->state != M_RUNNING || !master_count_children(m, true))
		return false;
	for (int i = 0; i < m->target; i++) {
		const struct slot *s = &m->slots[i];
		if (!s->restarts && !s->fatal && (!s->cur || s->cur->state != C_READY))
			return false;
	}
	return true;
}

static void master_on_http(void *priv, const char *path, struct http_reply *out)
{
	struct master *m = priv;
	out->content_type = TEXT_PLAIN;
	if (!strcmp(path, "/metrics")) {
		out->content_type = PROM_TEXT;
		out->status = 200;
		if (!(out->body = master_render_metrics(m, &out->len)))
			out->status = 500;
	} else if (!strcmp(path, "/healthz")) {
		bool ok = master_is_healthy(m);
		out->status = ok ? 200 : 503;
		out->body = xstrdup(ok                         ? "ok\n"
		                    : !rds_async_is_up(m->rds) ? "redis unreachable\n"
		                                               : "heartbeat stale\n");
	} else if (!strcmp(path, "/readyz")) {
		bool ok = master_is_ready(m);
		out->status = ok ? 200 : 503;
		out->body = xstrdup(ok                      ? "ready\n"
		                    : m->state != M_RUNNING ? "not running\n"
		                                            : "workers booting\n");
	} else {
		out->status = 404;
		out->body = xstrdup("not found\n");
	}
}

static int master_http_listen(struct master *m)
{
	char err[512];
	struct http *h =
	    http_new(m->loop, m->cfg->http_listen, master_on_http, m, err, sizeof(err));
	if (!h) {
		log_error("http endpoint not started", LF_STR("error", err));
		return -1;
	}
	http_free(m->http);
	m->http = h;
	metrics_poll(m->metrics, m->cfg);
	log_info("http endpoint listening", LF_STR("listen", m->cfg->http_listen));
	return 0;
}

int master_http_start(struct master *m)
{
	if (!(m->metrics = metrics_new(m->loop, m->rds, m->sb.ncells))) {
		log_error("cannot map the job counters", LF_ERRNO());
		return 1;
	}
	if (m->cfg->http_listen && master_http_listen(m))
		return 1;
	return 0;
}

/* After HUP: a changed address starts a new listener before the old one
 * closes; when the new one cannot listen, the old one stays. */
void master_http_reconfigure(struct master *m)
{
	const char *want = m->cfg->http_listen, *have = m->http ? http_addr(m->http) : NULL;
	if (want && have && !strcmp(want, have)) {
		metrics_poll(m->metrics, m->cfg); /* the queue list may have changed */
		return;
	}
	if (want) {
		if (master_http_listen(m) && have)
			log_warn("http endpoint kept on its old address", LF_STR("listen", have));
		return;
	}
	if (have) {
		log_info("http endpoint closed", LF_STR("listen", have));
		http_free(m->http);
		m->http = NULL;
		metrics_poll(m->metrics, NULL);
	}
}

void master_http_forget_in_child(struct master *m)
{
	http_forget_in_child(m->http);
}

void master_http_free(struct master *m)
{
	http_free(m->http);
	m->http = NULL;
	metrics_free(m->metrics);
	m->metrics = NULL;
}
