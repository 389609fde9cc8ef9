/* client: short-lived synchronous Redis sessions. push writes exactly what
 * the Ruby client writes (SADD queues + LPUSH, or ZADD schedule); status
 * reads what the Web UI reads; health checks this node's heartbeat. */
#include "client.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "health.h"
#include "ident.h"
#include "job.h"
#include "keys.h"
#include "rds.h"
#include "unique.h"
#include "util.h"

#define CLIENT_TIMEOUT 5.0

struct client {
	const char *config_path;
	struct config *cfg;
	struct rds *r;
};

static void client_usage(FILE *out)
{
	fputs("usage: forq push CLASS [ARGS_JSON] [-q QUEUE] [--in SECONDS|--at EPOCH]\n"
	      "                 [--retry N|true|false] [--jid JID] [-C FILE]\n"
	      "       forq status [-C FILE]\n"
	      "       forq health [-C FILE] [--pid PID] [--max-age SECONDS]\n"
	      "       forq reopen-logs [-C FILE] [--pid PID]\n",
	      out);
}

bool client_is_command(int argc, char **argv)
{
	return argc > 1 && (!strcmp(argv[1], "push") || !strcmp(argv[1], "status") ||
			    !strcmp(argv[1], "health") || !strcmp(argv[1], "reopen-logs"));
}

/* Redis URL as the master finds it: file, then REDIS_URL / REDIS_PROVIDER. */
static int client_connect(struct client *c)
{
	struct config_override ov[2];
	struct config_error cerr;
	struct rdsurl u;
	char err[512];
	const char *provider = getenv("REDIS_PROVIDER"), *url = NULL, *origin = "REDIS_URL";
	size_t nov = 0;

	if (!c->config_path)
		c->config_path = getenv("FORQ_CONFIG");
	if (provider && *provider)
		url = getenv(provider), origin = provider;
	else
		url = getenv("REDIS_URL");
	if (url && *url)
		ov[nov++] = (struct config_override){"redis_url", url, origin};
	if ((url = getenv("FORQ_NAMESPACE")) && *url)
		ov[nov++] = (struct config_override){"namespace", url, "FORQ_NAMESPACE"};
	if (!(c->cfg = config_load(c->config_path, ov, nov, &cerr))) {
		fprintf(stderr, "forq: %s: %s\n", cerr.where, cerr.msg);
		return 78;
	}
	keys_set_namespace(c->cfg->namespace);
	if (config_rdsurl(c->cfg, &u, err, sizeof(err))) {
		fprintf(stderr, "forq: %s\n", err);
		return 78;
	}
	/* A TLS write to a server that hung up must fail with EPIPE (and be
	 * reported), not kill the command silently. */
	signal(SIGPIPE, SIG_IGN);
	if (!(c->r = rds_open(&u, CLIENT_TIMEOUT, err, sizeof(err)))) {
		fprintf(stderr, "forq: %s\n", err);
		return 1;
	}
	return 0;
}

static void client_close(struct client *c)
{
	rds_close(c->r);
	config_free(c->cfg);
}

/* A reply that is not an error, or NULL after printing why. */
static struct rds_reply *client_check(struct client *c, struct rds_reply *x, const char *what)
{
	if (!x) {
		fprintf(stderr, "forq: %s: %s\n", what, rds_errstr(c->r));
		return NULL;
	}
	if (rds_type(x) == RDS_ERR) {
		fprintf(stderr, "forq: %s: %s\n", what, rds_str(x, NULL));
		rds_free(x);
		return NULL;
	}
	return x;
}

/* ---- push ------------------------------------------------------------- */

struct push_opts {
	const char *job_class, *args, *queue, *retry, *jid;
	double at;
	bool has_at;
};

static int push_parse(int argc, char **argv, struct client *c, struct push_opts *o)
{
	static const struct option opts[] = {
		{"queue", required_argument, NULL, 'q'}, {"in", required_argument, NULL, 'i'},
		{"at", required_argument, NULL, 'a'},    {"retry", required_argument, NULL, 'r'},
		{"jid", required_argument, NULL, 'j'},   {"config", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0},
	};
	double v;
	int ch;
	o->queue = "default";
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "q:C:", opts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			o->queue = optarg;
			break;
		case 'C':
			c->config_path = optarg;
			break;
		case 'i':
		case 'a':
			if (util_parse_double(optarg, -1e12, 1e12, &v))
				goto out_usage;
			/* Sidekiq's perform_in: small numbers are relative. */
			o->at = ch == 'i' || v < 1e9 ? util_now_wall() + v : v;
			o->has_at = true;
			break;
		case 'r':
			o->retry = optarg;
			break;
		case 'j':
			o->jid = optarg;
			break;
		default:
			goto out_usage;
		}
	}
	if (optind >= argc || argc - optind > 2)
		goto out_usage;
	o->job_class = argv[optind];
	o->args = optind + 1 < argc ? argv[optind + 1] : "[]";
	return 0;
out_usage:
	client_usage(stderr);
	return -1;
}

/* A class whose unique lock is taken at enqueue is pushed only together
 * with its lock (unique_push.lua). 1 when this path applied (*rc set: 0
 * pushed or refused as a duplicate, 1 Redis error), 0 when the job has no
 * such lock. A refused push prints why on stderr and exits 0, as Sidekiq's
 * client returns nil for a rejected unique push. */
static int client_push_locked(struct client *c, const struct push_opts *o, const char *payload,
			      double now, bool scheduled, int *rc)
{
	struct job j;
	struct unique_lock lk;
	char err[512], holder[128];
	int applied = 0;
	if (job_parse(&j, payload, strlen(payload), err, sizeof(err)) ||
	    !unique_lock_of(c->cfg, &j, o->queue, &lk))
		goto out_job;
	if (!unique_locks_at_push(lk.type))
		goto out_lock;
	applied = 1;
	double delay = scheduled ? o->at - now : 0;
	int got = unique_push(c->r, &lk, j.jid, payload, o->queue, scheduled ? o->at : 0,
			      lk.ttl + delay, holder, sizeof(holder), err, sizeof(err));
	*rc = got < 0;
	if (got < 0)
		fprintf(stderr, "forq: push: %s\n", err);
	else if (got == 0)
		fprintf(stderr, "forq: not pushed: %s job with these arguments is already "
			"queued or running (%s lock held by jid %s)\n", j.job_class,
			config_unique_name(lk.type), holder);
	else
		printf("%s\n", j.jid);
out_lock:
	unique_lock_free(&lk);
out_job:
	job_free(&j);
	return applied;
}

static int client_push(int argc, char **argv)
{
	struct client c = {0};
	struct push_opts o = {0};
	char hex[32], err[512], score[40];
	int rc;
	double now = util_now_wall();

	if (push_parse(argc, argv, &c, &o))
		return 64;
	if (o.retry && strcmp(o.retry, "true") && strcmp(o.retry, "false")) {
		long n;
		if (util_parse_long(o.retry, 0, 1000000, &n)) {
			fprintf(stderr, "forq: --retry takes a number, true or false\n");
			return 64;
		}
	}
	ident_random_hex(hex, 12);
	bool scheduled = o.has_at && o.at > now;
	char *payload = job_build(o.job_class, o.args, o.queue, o.retry ? o.retry : "true", o.jid,
				  hex, now, scheduled, err, sizeof(err));
	if (!payload) {
		fprintf(stderr, "forq: %s\n", err);
		return 64;
	}
	if ((rc = client_connect(&c)))
		goto out;
	if (client_push_locked(&c, &o, payload, now, scheduled, &rc))
		goto out;
	struct rds_reply *x;
	if (scheduled) {
		job_format_time(score, sizeof(score), o.at);
		x = rds_callv(c.r, "ZADD", KEY_SCHEDULE, score, payload, NULL);
	} else {
		char *qkey = keys_queue(o.queue);
		rds_free(rds_callv(c.r, "SADD", KEY_QUEUES, o.queue, NULL));
		x = rds_callv(c.r, "LPUSH", qkey, payload, NULL);
		free(qkey);
	}
	if (!(x = client_check(&c, x, "push"))) {
		rc = 1;
		goto out;
	}
	rds_free(x);
	char *jid = job_json_get_string(payload, "jid");
	printf("%s\n", jid ? jid : "");
	free(jid);
out:
	free(payload);
	client_close(&c);
	return rc;
}

/* ---- status ------------------------------------------------------------ */

static long long client_int(struct client *c, const char *a0, const char *a1)
{
	struct rds_reply *x = rds_callv(c->r, a0, a1, NULL);
	long long v = x && rds_type(x) == RDS_INT ? rds_int(x) : 0;
	if (x && rds_type(x) == RDS_STR)
		v = atoll(rds_str(x, NULL));
	rds_free(x);
	return v;
}

/* A field of a hash, copied; NULL when absent. */
static char *client_hget(struct client *c, const char *key, const char *field)
{
	struct rds_reply *x = rds_callv(c->r, "HGET", key, field, NULL);
	char *v = x && rds_type(x) == RDS_STR ? xstrdup(rds_str(x, NULL)) : NULL;
	rds_free(x);
	return v;
}

static void status_work(struct client *c, const char *identity, double now)
{
	char *key = keys_work(identity);
	struct rds_reply *x = rds_callv(c->r, "HGETALL", key, NULL);
	free(key);
	for (size_t i = 0; x && rds_type(x) == RDS_ARR && i + 1 < rds_len(x); i += 2) {
		const char *tid = rds_str(rds_elem(x, i), NULL), *w = rds_str(rds_elem(x, i + 1), NULL);
		char *queue = job_json_get_string(w, "queue"), *payload = job_json_get_string(w, "payload");
		double run_at = now;
		struct job j;
		char err[64];
		job_json_get_number(w, "run_at", &run_at);
		bool ok = payload && !job_parse(&j, payload, strlen(payload), err, sizeof(err));
		printf("    worker %-4s %-24s jid=%s queue=%s running %.0fs\n", tid,
		       ok ? j.job_class : "?", ok ? j.jid : "?", queue ? queue : "?", now - run_at);
		if (payload)
			job_free(&j);
		free(queue);
		free(payload);
	}
	rds_free(x);
}

static void status_nodes(struct client *c, double now)
{
	struct rds_reply *x = rds_callv(c->r, "SMEMBERS", KEY_PROCESSES, NULL);
	size_t n = x && rds_type(x) == RDS_ARR ? rds_len(x) : 0;
	printf("nodes: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		const char *id = rds_str(rds_elem(x, i), NULL);
		char *pk = keys_process(id);
		char *info = client_hget(c, pk, "info"), *busy = client_hget(c, pk, "busy");
		char *beat = client_hget(c, pk, "beat"), *quiet = client_hget(c, pk, "quiet");
		char *conc = client_hget(c, pk, "concurrency"), *tag = job_json_get_string(info, "tag");
		free(pk);
		if (!info)
			printf("  %s  (expired: no heartbeat within 60 s)\n", id);
		else
			printf("  %s%s%s%s  processes %s  busy %s  %s  beat %.1fs ago\n", id,
			       tag && *tag ? "  [" : "", tag && *tag ? tag : "", tag && *tag ? "]" : "",
			       conc ? conc : "?", busy ? busy : "0",
			       quiet && !strcmp(quiet, "true") ? "quiet" : "running",
			       beat ? now - atof(beat) : -1.0);
		if (info)
			status_work(c, id, now);
		free(info);
		free(busy);
		free(beat);
		free(quiet);
		free(conc);
		free(tag);
	}
	rds_free(x);
}

static void status_queues(struct client *c, double now)
{
	struct rds_reply *x = rds_callv(c->r, "SMEMBERS", KEY_QUEUES, NULL);
	size_t n = x && rds_type(x) == RDS_ARR ? rds_len(x) : 0;
	printf("queues: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		const char *q = rds_str(rds_elem(x, i), NULL);
		char *key = keys_queue(q);
		long long size = client_int(c, "LLEN", key);
		struct rds_reply *last = rds_callv(c->r, "LINDEX", key, "-1", NULL);
		double enq = 0, latency = 0;
		if (last && rds_type(last) == RDS_STR &&
		    !job_json_get_number(rds_str(last, NULL), "enqueued_at", &enq) && enq > 0)
			latency = now - (enq > 1e11 ? enq / 1000 : enq);
		printf("  %-20s size %-8lld latency %.1fs\n", q, size, latency);
		rds_free(last);
		free(key);
	}
	rds_free(x);
}

static void status_time(char *buf, size_t n, const char *epoch)
{
	time_t t = epoch ? (time_t)atoll(epoch) : 0;
	struct tm tm;
	if (!epoch || t <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, n, "-");
}

static int cmp_reply_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names in a set, sorted; free the array (the strings live in *x). */
static const char **status_set(struct client *c, const char *key, struct rds_reply **x,
			       size_t *n)
{
	*x = rds_callv(c->r, "SMEMBERS", key, NULL);
	*n = *x && rds_type(*x) == RDS_ARR ? rds_len(*x) : 0;
	const char **names = xcalloc(*n + 1, sizeof(*names));
	for (size_t i = 0; i < *n; i++)
		names[i] = rds_str(rds_elem(*x, i), NULL);
	qsort(names, *n, sizeof(*names), cmp_reply_str);
	return names;
}

/* Each cron entry the leader has run: last and next tick (UTC). */
static void status_cron(struct client *c)
{
	struct rds_reply *x;
	size_t n;
	const char **names = status_set(c, KEY_CRONS, &x, &n);
	printf("cron: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		char *key = keys_cron(names[i]), last[32], next[32];
		char *spec = client_hget(c, key, "spec"), *lt = client_hget(c, key, "last_tick");
		char *jid = client_hget(c, key, "last_jid"), *nt = client_hget(c, key, "next");
		char *skipped = client_hget(c, key, "skipped");
		char *bar = spec ? strchr(spec, '|') : NULL, *bar2 = bar ? strchr(bar + 1, '|') : NULL;
		if (bar2)
			*bar2 = '\0';
		if (bar)
			*bar = ' ';
		status_time(last, sizeof(last), lt);
		status_time(next, sizeof(next), nt);
		printf("  %-20s %-24s last %s%s%s%s  next %s  skipped %s\n", names[i],
		       spec ? spec : "?", last, jid ? " (jid " : "", jid ? jid : "", jid ? ")" : "",
		       next, skipped ? skipped : "0");
		free(key);
		free(spec);
		free(lt);
		free(jid);
		free(nt);
		free(skipped);
	}
	free(names);
	rds_free(x);
}

/* Each daemon: who holds its lease ("identity|token") now. */
static void status_daemons(struct client *c)
{
	struct rds_reply *x;
	size_t n;
	const char **names = status_set(c, KEY_DAEMONS, &x, &n);
	printf("daemons: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		char *key = keys_daemon(names[i]);
		struct rds_reply *h = rds_callv(c->r, "GET", key, NULL);
		char *holder = h && rds_type(h) == RDS_STR ? xstrdup(rds_str(h, NULL)) : NULL;
		char *bar = holder ? strrchr(holder, '|') : NULL;
		if (bar)
			*bar++ = '\0';
		if (holder)
			printf("  %-20s held by %s (token %s)\n", names[i], holder, bar ? bar : "?");
		else
			printf("  %-20s no holder\n", names[i]);
		free(holder);
		rds_free(h);
		free(key);
	}
	free(names);
	rds_free(x);
}

static int client_status(int argc, char **argv)
{
	struct client c = {0};
	int ch, rc;
	optind = 0;
	opterr = 0;
	while ((ch = getopt(argc, argv, "C:")) != -1) {
		if (ch != 'C') {
			client_usage(stderr);
			return 64;
		}
		c.config_path = optarg;
	}
	if (optind < argc) {
		client_usage(stderr);
		return 64;
	}
	if ((rc = client_connect(&c)))
		goto out;
	struct rds_reply *ping = client_check(&c, rds_callv(c.r, "PING", NULL), "status");
	if (!ping) {
		rc = 1;
		goto out;
	}
	rds_free(ping);
	double now = util_now_wall();
	char *leader = NULL;
	struct rds_reply *l = rds_callv(c.r, "GET", KEY_LEADER, NULL);
	if (l && rds_type(l) == RDS_STR)
		leader = xstrdup(rds_str(l, NULL));
	rds_free(l);
	char *bar = leader ? strrchr(leader, '|') : NULL;
	if (bar)
		*bar = '\0';
	printf("leader: %s%s%s%s\n", leader ? leader : "(none)", bar ? " (epoch " : "",
	       bar ? bar + 1 : "", bar ? ")" : "");
	free(leader);
	status_nodes(&c, now);
	status_queues(&c, now);
	status_cron(&c);
	status_daemons(&c);
	printf("retry: %lld  scheduled: %lld  dead: %lld\n", client_int(&c, "ZCARD", KEY_RETRY),
	       client_int(&c, "ZCARD", KEY_SCHEDULE), client_int(&c, "ZCARD", KEY_DEAD));
	printf("processed: %lld  failed: %lld\n", client_int(&c, "GET", KEY_STAT_PROCESSED),
	       client_int(&c, "GET", KEY_STAT_FAILED));
out:
	client_close(&c);
	return rc;
}

/* ---- health ------------------------------------------------------------- */

/* The master pid to check: --pid, the pid file, or PID 1 when it is forq
 * (the container case). 0 when none is known. */
static long health_pid(const struct client *c, long given)
{
	char title[64] = "";
	if (given)
		return given;
	if (c->cfg->pidfile) {
		FILE *f = fopen(c->cfg->pidfile, "r");
		long pid = 0;
		if (f) {
			if (fscanf(f, "%ld", &pid) != 1)
				pid = 0;
			fclose(f);
		}
		if (pid)
			return pid;
	}
	FILE *f = fopen("/proc/1/cmdline", "r");
	if (f) {
		size_t n = fread(title, 1, sizeof(title) - 1, f);
		title[n] = '\0';
		fclose(f);
	}
	return !strncmp(title, "forq: master", 12) ? 1 : 0;
}

static int client_health(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"max-age", required_argument, NULL, 'm'},
		{"config", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0},
	};
	struct client c = {0};
	long pid = 0;
	double max_age = HEALTH_MAX_AGE;
	char host[256], prefix[320];
	int ch, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "C:", opts, NULL)) != -1) {
		if (ch == 'C')
			c.config_path = optarg;
		else if (ch == 'p' && !util_parse_long(optarg, 1, 1L << 30, &pid))
			continue;
		else if (ch == 'm' && !util_parse_double(optarg, 0.1, 3600, &max_age))
			continue;
		else
			goto out_usage;
	}
	if (optind < argc)
		goto out_usage;
	if ((rc = client_connect(&c)))
		goto out;
	pid = health_pid(&c, pid);
	ident_hostname(host, sizeof(host));
	if (pid)
		snprintf(prefix, sizeof(prefix), "%s:%ld:", host, pid);
	else
		snprintf(prefix, sizeof(prefix), "%s:", host);
	rc = 1;
	struct rds_reply *x = rds_callv(c.r, "SMEMBERS", KEY_PROCESSES, NULL);
	double now = util_now_wall(), best = -1;
	int matches = 0;
	const char *found = NULL;
	for (size_t i = 0; x && rds_type(x) == RDS_ARR && i < rds_len(x); i++) {
		const char *id = rds_str(rds_elem(x, i), NULL);
		if (strncmp(id, prefix, strlen(prefix)))
			continue;
		char *pk = keys_process(id), *beat = client_hget(&c, pk, "beat");
		free(pk);
		if (beat) {
			matches++;
			if (best < 0 || now - atof(beat) < best)
				best = now - atof(beat), found = id;
		}
		free(beat);
	}
	if (!found)
		printf("unhealthy: no live forq node for %s* in redis\n", prefix);
	else if (!pid && matches > 1)
		printf("unhealthy: %d forq nodes on this host; name one with --pid\n", matches);
	else if (!health_beat_is_fresh(now - best, now, max_age))
		printf("unhealthy: %s last beat %.1fs ago (limit %.0fs)\n", found, best, max_age);
	else
		printf("healthy: %s beat %.1fs ago\n", found, best), rc = 0;
	rds_free(x);
out:
	client_close(&c);
	return rc;
out_usage:
	client_usage(stderr);
	return 64;
}

/* ---- reopen-logs ---------------------------------------------------------- */

/* Signals WINCH to the master named by --pid, the pid file or PID 1, after
 * making sure that process is a forq master: a stale pid file must not
 * signal whatever process has that pid now. */
static int client_reopen_logs(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"config", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0},
	};
	struct client c = {0};
	struct config_error cerr;
	char path[64], title[64] = "";
	long pid = 0;
	int ch;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "C:", opts, NULL)) != -1) {
		if (ch == 'C')
			c.config_path = optarg;
		else if (ch != 'p' || util_parse_long(optarg, 1, 1L << 30, &pid))
			goto out_usage;
	}
	if (optind < argc)
		goto out_usage;
	if (!c.config_path)
		c.config_path = getenv("FORQ_CONFIG");
	if (!(c.cfg = config_load(c.config_path, NULL, 0, &cerr))) {
		fprintf(stderr, "forq: %s: %s\n", cerr.where, cerr.msg);
		return 78;
	}
	pid = health_pid(&c, pid);
	config_free(c.cfg);
	if (!pid) {
		fprintf(stderr, "forq: no master to signal: give --pid or set pidfile\n");
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	FILE *f = fopen(path, "r");
	if (f) {
		title[fread(title, 1, sizeof(title) - 1, f)] = '\0';
		fclose(f);
	}
	if (strncmp(title, "forq: master", 12)) {
		fprintf(stderr, "forq: process %ld is not a forq master\n", pid);
		return 1;
	}
	if (kill((pid_t)pid, SIGWINCH)) {
		fprintf(stderr, "forq: cannot signal %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	return 0;
out_usage:
	client_usage(stderr);
	return 64;
}

int client_main(int argc, char **argv)
{
	if (!strcmp(argv[1], "push"))
		return client_push(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return client_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "reopen-logs"))
		return client_reopen_logs(argc - 1, argv + 1);
	return client_health(argc - 1, argv + 1);
}
