/* cron: one round = Redis TIME, then (for entries whose watermark is not
 * known yet) HMGET of their hashes, then one cron.lua call per entry with
 * due ticks. The timer is set for the earliest next tick of any entry, read
 * against Redis's clock through the offset measured at the last TIME, and
 * never longer than CRON_MAX_SLEEP so that a drifting offset is corrected.
 * Watermarks are cached while this node stays leader: only a leader writes
 * them, and the script returns the one it stored. */
#include "cron.h"

#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cronplan.h"
#include "cronpub.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "unique.h"
#include "util.h"

#define CRON_MAX_SLEEP 5.0
/* Woken this long after a tick so that Redis's TIME is past it. */
#define CRON_WAKE_LATE 0.002
/* State of an entry no longer configured is kept this long (seconds), in
 * case it comes back (a rolled-back deploy) with its watermark. */
#define CRON_FORGET_AFTER 604800

/* The fields of sidekiq-cron's record forq writes from its configuration;
 * status and last_enqueue_time are written by cron.lua. */
static const char *const record_fields[] = {
	"name", "klass", "cron", "description", "args", "date_as_argument", "message",
	"active_job", "queue_name_prefix", "queue_name_delimiter", "symbolize_args"};
#define CRON_RECORD_FIELDS 11
#define CRON_RECORD_FIELDS_TEXT "11"
_Static_assert(sizeof(record_fields) / sizeof(record_fields[0]) == CRON_RECORD_FIELDS,
	       "record_fields");

struct cron_entry {
	const struct config_cron *cfg;
	struct cronplan plan;
	char *key;       /* forq:cron:<name> */
	char *queue;
	char *queue_key; /* queue:<queue> */
	/* sidekiq-cron's record (publishing on): its keys, cron_jobs member
	 * and the fields forq writes (pairs), and whether this leadership or
	 * configuration has written it yet */
	char *pub_key, *pub_enqueued, *pub_jids, *pub_member;
	char *pub_values[CRON_RECORD_FIELDS];
	bool published;
	/* overlap = forbid: the until_executed lock string of the entry's job
	 * (NULL otherwise), and that lock's TTL in seconds */
	char *lock;
	double lock_ttl;
	bool wm_known;
	int64_t wm;
	int64_t next; /* next tick after wm, -1 never */
};

struct cron {
	struct ev_loop *loop;
	struct rds_async *rds;
	struct cron_entry *entries;
	size_t n;
	bool publish;    /* cron_publish: keep sidekiq-cron's records */
	char lease[400]; /* "" when not the leader */
	unsigned gen;    /* bumped when entries or leadership change */
	bool busy;       /* a round is in flight */
	bool again;      /* something changed during the round: run another */
	bool freed;      /* cron_free came while replies were pending */
	bool pruning;    /* the SMEMBERS of cron_prune is pending */
	int pending;     /* Redis replies still to come */
	double now;      /* Redis TIME of this round */
	double offset;   /* Redis clock minus ours */
	unsigned long long fired, skipped; /* ticks, for /metrics */
	ev_timer w;
};

/* What a reply belongs to. */
struct cron_req {
	struct cron *c;
	unsigned gen;
	size_t idx;
};

static void cron_round(struct cron *c);
static void cron_fire(struct cron *c);
static void cron_unpublish(struct cron *c, const char *name);

static void entries_free(struct cron_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cronplan_fini(&e[i].plan);
		free(e[i].key);
		free(e[i].queue);
		free(e[i].queue_key);
		free(e[i].lock);
		free(e[i].pub_key);
		free(e[i].pub_enqueued);
		free(e[i].pub_jids);
		free(e[i].pub_member);
		for (size_t f = 0; f < CRON_RECORD_FIELDS; f++)
			free(e[i].pub_values[f]);
	}
	free(e);
}

static char *text_bool(bool b)
{
	return xstrdup(b ? "true" : "false");
}

/* The fields of sidekiq-cron's record that come from the configuration,
 * as its Job#to_hash writes them (booleans as true/false, nil as ""). */
static void entry_record(struct cron_entry *e)
{
	const struct config_cron *cc = e->cfg;
	char *values[CRON_RECORD_FIELDS] = {xstrdup(cc->name),
			  xstrdup(cc->job_class),
			  cronpub_cron(cc),
			  xstrdup(cc->description ? cc->description : ""),
			  xstrdup(cc->args ? cc->args : "[]"),
			  text_bool(cc->date_as_argument),
			  cronpub_message(cc),
			  text_bool(cc->active_job),
			  xstrdup(cc->queue_name_prefix ? cc->queue_name_prefix : ""),
			  xstrdup(cc->queue_name_delimiter ? cc->queue_name_delimiter : ""),
			  text_bool(cc->symbolize_args)};
	memcpy(e->pub_values, values, sizeof(values));
	e->pub_key = keys_sidekiq_cron_job(cc->name);
	e->pub_enqueued = keys_sidekiq_cron_enqueued(cc->name);
	e->pub_jids = keys_sidekiq_cron_jids(cc->name);
	e->pub_member = keys_sidekiq_cron_member(cc->name);
}

static struct cron_entry *entries_new(const struct config *cfg, char *err, size_t errlen)
{
	struct cron_entry *e = xcalloc(cfg->ncrons ? cfg->ncrons : 1, sizeof(*e));
	for (size_t i = 0; i < cfg->ncrons; i++) {
		char why[300];
		e[i].cfg = &cfg->crons[i];
		if (cronplan_init(&e[i].plan, &cfg->crons[i], why, sizeof(why))) {
			util_seterr(err, errlen, "[cron \"%s\"] %s", cfg->crons[i].name, why);
			entries_free(e, i);
			return NULL;
		}
		const struct config_cron *cc = &cfg->crons[i];
		const struct config_job *jc = config_find_job(cfg, cc->job_class);
		e[i].key = keys_cron(cc->name);
		e[i].queue = cronpub_queue(cc);
		e[i].queue_key = keys_queue(e[i].queue);
		entry_record(&e[i]);
		e[i].lock_ttl = jc && jc->unique != UNIQUE_NONE ? jc->unique_ttl : UNIQUE_TTL_DEFAULT;
		if (cc->overlap_forbid)
			e[i].lock = job_lock_string(cc->job_class, e[i].queue, cc->args ? cc->args : "[]",
						    jc ? jc->unique_args : NULL,
						    jc ? jc->nunique_args : 0);
	}
	return e;
}

static void cron_destroy(struct cron *c)
{
	entries_free(c->entries, c->n);
	free(c);
}

static struct cron_req *req_new(struct cron *c, size_t idx)
{
	struct cron_req *r = xmalloc(sizeof(*r));
	*r = (struct cron_req){c, c->gen, idx};
	c->pending++;
	return r;
}

/* For a request whose callback will not run (not connected). */
static void req_drop(struct cron_req *r)
{
	r->c->pending--;
	free(r);
}

/* Takes a reply's request. *out is the cron, or NULL when it was freed
 * meanwhile (the last reply frees it). Returns whether the reply belongs to
 * the current entries and lease. */
static bool req_done(struct cron_req *r, struct cron **out)
{
	struct cron *c = r->c;
	bool current = r->gen == c->gen;
	free(r);
	c->pending--;
	*out = NULL;
	if (c->freed) {
		if (!c->pending && !c->pruning)
			cron_destroy(c);
		return false;
	}
	*out = c;
	return current;
}

static void cron_sleep(struct cron *c, double delay)
{
	ev_timer_stop(c->loop, &c->w);
	ev_timer_set(&c->w, delay < 0 ? 0 : delay > CRON_MAX_SLEEP ? CRON_MAX_SLEEP : delay, 0.0);
	ev_timer_start(c->loop, &c->w);
}

/* End of a round: sleep until the earliest next tick. */
static void cron_round_done(struct cron *c)
{
	double wake = INFINITY;
	c->busy = false;
	if (c->again) {
		c->again = false;
		cron_round(c);
		return;
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct cron_entry *e = &c->entries[i];
		/* Redis failed us (or refused the script): try again in a
		 * second, not at a tick already due, which would spin. */
		double at = !e->wm_known ? c->now + 1 : e->next >= 0 ? (double)e->next : INFINITY;
		if (at < wake)
			wake = at;
	}
	/* wake is in Redis time; our clock plus offset estimates it */
	cron_sleep(c, wake - (util_now_wall() + c->offset) + CRON_WAKE_LATE);
}

static void cron_step_done(struct cron *c)
{
	if (!c->pending && c->busy)
		cron_round_done(c);
}

/* What the script says beyond the pushes: ticks the sidekiq-cron tab
 * stopped, ticks its poller took. */
static void cron_log_record(const struct cron_entry *e, struct rds_reply *x, long long skipped)
{
	const char *why = rds_str(rds_elem(x, 4), NULL);
	long long taken = rds_int(rds_elem(x, 5));
	if (skipped && why && !strcmp(why, "disabled"))
		log_info("cron ticks skipped: disabled in the sidekiq-cron tab",
			 LF_STR("cron", e->cfg->name), LF_INT("skipped", skipped));
	else if (skipped && why && !strcmp(why, "deleted"))
		log_warn("cron ticks skipped: deleted in the sidekiq-cron tab; "
			 "it runs again from the next reload",
			 LF_STR("cron", e->cfg->name), LF_INT("skipped", skipped));
	if (taken)
		log_info("cron tick already enqueued by a sidekiq-cron poller",
			 LF_STR("cron", e->cfg->name), LF_INT("ticks", taken));
}

static void cron_on_fired(struct rds_reply *x, void *priv)
{
	struct cron *c = NULL;
	size_t idx = ((struct cron_req *)priv)->idx;
	if (!req_done(priv, &c))
		goto out_step;
	struct cron_entry *e = &c->entries[idx];
	const char *name = e->cfg->name;
	if (!x || rds_type(x) != RDS_ARR || rds_len(x) != 6) {
		log_warn("cron script failed; retrying next round", LF_STR("cron", name),
			 LF_STR("error", x ? rds_str(x, NULL) : "no reply"));
		e->wm_known = false;
		goto out_step;
	}
	long long status = rds_int(rds_elem(x, 0));
	long long pushed = rds_int(rds_elem(x, 2)), skipped = rds_int(rds_elem(x, 3));
	if (status < 0) {
		log_warn("cron fenced: this node is no longer the leader", LF_STR("cron", name));
		c->lease[0] = '\0';
		c->gen++;
		goto out_step;
	}
	e->wm = rds_int(rds_elem(x, 1));
	e->wm_known = true;
	c->fired += (unsigned long long)pushed;
	c->skipped += (unsigned long long)skipped;
	e->published = true;
	e->next = cronexpr_next(e->plan.expr, e->plan.zone, e->wm);
	if (status == 0)
		log_info("cron entry starts now (new or changed; no backfill)", LF_STR("cron", name),
			 LF_INT("next", e->next));
	if (pushed)
		log_info("cron enqueued", LF_STR("cron", name), LF_STR("class", e->cfg->job_class),
			 LF_INT("tick", e->wm), LF_INT("jobs", pushed),
			 LF_DBL("late", c->now - (double)e->wm));
	const char *why = rds_str(rds_elem(x, 4), NULL);
	if (why && *why)
		cron_log_record(e, x, skipped);
	else if (skipped)
		log_warn("cron ticks skipped", LF_STR("cron", name), LF_INT("skipped", skipped),
			 LF_STR("catch_up", config_catch_up_name(e->cfg->catch_up)),
			 LF_BOOL("overlap_forbidden", e->cfg->overlap_forbid));
	if (rds_int(rds_elem(x, 5)))
		cron_log_record(e, x, 0);
out_step:
	if (c)
		cron_step_done(c);
}

/* The payload of one tick: the job the entry describes, with its jid
 * derived from entry and tick, and where it came from. */
static char *cron_payload(const struct cron *c, const struct cron_entry *e, int64_t tick,
			  const char *jid)
{
	const struct config_cron *cc = e->cfg;
	char err[256], tickbuf[32], ttlbuf[32], *name, *out;
	char *raw = cronpub_payload(cc, tick, jid, c->now, err, sizeof(err));
	if (!raw)
		return NULL; /* config_load built it once already */
	name = job_json_quote(cc->name);
	snprintf(tickbuf, sizeof(tickbuf), "%lld", (long long)tick);
	snprintf(ttlbuf, sizeof(ttlbuf), "%.0f", e->lock_ttl);
	const char *kv[] = {"cron", name, "cron_tick", tickbuf,
			    "forq_unique", "\"until_executed\"", "forq_unique_ttl", ttlbuf};
	out = job_with_members(raw, kv, cc->overlap_forbid ? 4 : 2);
	free(raw);
	free(name);
	return out;
}

/* The publishing arguments of cron.lua (11 to 17 and the record). */
static size_t cron_publish_argv(const struct cron *c, const struct cron_entry *e, int64_t now_s,
				const char **argv, char **owned, size_t *no)
{
	char t[CRONPUB_TIME_MAX];
	size_t a = 11;
	int64_t seed = cronexpr_prev(e->plan.expr, e->plan.zone, now_s);
	enum config_cron_status st = e->cfg->status;
	argv[a++] = !c->publish ? "0" : e->published ? "1" : "2";
	argv[a++] = st == CRON_STATUS_ENABLED ? "enabled" : st == CRON_STATUS_DISABLED ? "disabled" : "";
	cronpub_last_time(now_s, t);
	argv[a++] = owned[(*no)++] = xstrdup(t);
	argv[a++] = e->pub_member;
	argv[a++] = owned[(*no)++] = xasprintf("%lld", (long long)seed);
	cronpub_member(seed, t);
	argv[a++] = owned[(*no)++] = xstrdup(t);
	argv[a++] = e->published || !c->publish ? "0" : CRON_RECORD_FIELDS_TEXT;
	for (size_t f = 0; c->publish && !e->published && f < CRON_RECORD_FIELDS; f++) {
		argv[a++] = record_fields[f];
		argv[a++] = e->pub_values[f];
	}
	return a;
}

static void cron_fire_entry(struct cron *c, size_t idx)
{
	struct cron_entry *e = &c->entries[idx];
	const struct config_cron *cc = e->cfg;
	int64_t *ticks = xcalloc(CRON_CATCH_UP_MAX, sizeof(*ticks)), newest;
	long skipped;
	size_t n = 0;
	bool reset = !e->wm_known;
	int64_t now_s = (int64_t)floor(c->now);

	if (!reset) {
		n = cronplan_due(&e->plan, cc->catch_up, e->wm, c->now, ticks, &newest, &skipped);
		if (!n && newest == e->wm && (e->published || !c->publish)) {
			free(ticks);
			return; /* nothing due */
		}
	} else {
		/* The script sets a new or changed entry's watermark to now; for
		 * one it finds unchanged, 0 keeps the stored watermark. */
		newest = 0;
		skipped = 0;
	}
	size_t argc = 9 + 17 + 2 * CRON_RECORD_FIELDS + 4 * n;
	const char **argv = xcalloc(argc, sizeof(*argv));
	char **owned = xcalloc(8 + 4 * n, sizeof(*owned));
	size_t no = 0;
	int64_t next = cronexpr_next(e->plan.expr, e->plan.zone, now_s);
	argv[0] = KEY_LEADER, argv[1] = e->key, argv[2] = e->queue_key, argv[3] = KEY_QUEUES;
	argv[4] = KEY_CRONS, argv[5] = KEY_SIDEKIQ_CRON_JOBS, argv[6] = e->pub_key;
	argv[7] = e->pub_enqueued, argv[8] = e->pub_jids;
	argv[9] = c->lease, argv[10] = cc->name, argv[11] = e->plan.spec;
	argv[12] = owned[no++] = xasprintf("%lld", (long long)now_s);
	argv[13] = owned[no++] = xasprintf("%lld", (long long)newest);
	argv[14] = owned[no++] = xasprintf("%ld", skipped);
	argv[15] = owned[no++] = xasprintf("%lld", (long long)next);
	argv[16] = e->queue;
	argv[17] = e->lock ? e->lock : "";
	argv[18] = owned[no++] = xasprintf("%.0f", e->lock_ttl * 1000);
	/* KEYS take 9 slots before ARGV[1]: script ARGV i is argv[8 + i] */
	size_t a = 8 + cron_publish_argv(c, e, now_s, argv + 8, owned, &no);
	for (size_t i = 0; i < n; i++) {
		char jid[25], member[CRONPUB_TIME_MAX];
		cronplan_jid(cc->name, ticks[i], jid);
		cronpub_member(ticks[i], member);
		argv[a++] = owned[no++] = xasprintf("%lld", (long long)ticks[i]);
		argv[a++] = owned[no++] = xstrdup(jid);
		argv[a] = owned[no++] = cron_payload(c, e, ticks[i], jid);
		if (!argv[a++])
			argv[a - 1] = "{}"; /* unreachable: the config built it */
		argv[a++] = owned[no++] = xstrdup(member);
	}
	struct cron_req *r = req_new(c, idx);
	if (rds_async_eval(c->rds, cron_on_fired, r, LUA_CRON, 9, (int)a, argv, NULL))
		req_drop(r); /* not connected: the next round tries again */
	for (size_t i = 0; i < no; i++)
		free(owned[i]);
	free(owned);
	free(argv);
	free(ticks);
}

static void cron_fire(struct cron *c)
{
	for (size_t i = 0; i < c->n && c->lease[0]; i++)
		cron_fire_entry(c, i);
	cron_step_done(c);
}

static void cron_on_state(struct rds_reply *x, void *priv)
{
	struct cron *c = NULL;
	size_t idx = ((struct cron_req *)priv)->idx;
	bool current = req_done(priv, &c);
	if (!c)
		return;
	struct cron_entry *e = current ? &c->entries[idx] : NULL;
	/* HMGET watermark spec: a watermark of another spec is no watermark */
	if (e && x && rds_type(x) == RDS_ARR && rds_len(x) == 2 &&
	    rds_type(rds_elem(x, 0)) == RDS_STR && rds_type(rds_elem(x, 1)) == RDS_STR &&
	    !strcmp(rds_str(rds_elem(x, 1), NULL), e->plan.spec)) {
		e->wm = strtoll(rds_str(rds_elem(x, 0), NULL), NULL, 10);
		e->wm_known = true;
		e->next = cronexpr_next(e->plan.expr, e->plan.zone, e->wm);
	}
	if (!c->pending && c->busy) {
		if (current && c->lease[0])
			cron_fire(c);
		else
			cron_round_done(c);
	}
}

static void cron_on_time(struct rds_reply *x, void *priv)
{
	struct cron *c = NULL;
	bool current = req_done(priv, &c);
	if (!c)
		return;
	if (!current || !x || rds_type(x) != RDS_ARR || rds_len(x) != 2) {
		c->busy = false;
		if (c->again || current)
			cron_sleep(c, current ? 1.0 : 0.0);
		c->again = false;
		return;
	}
	c->now = (double)strtoll(rds_str(rds_elem(x, 0), NULL), NULL, 10) +
		 (double)strtoll(rds_str(rds_elem(x, 1), NULL), NULL, 10) / 1e6;
	c->offset = c->now - util_now_wall();
	for (size_t i = 0; i < c->n; i++) {
		struct cron_entry *e = &c->entries[i];
		if (e->wm_known)
			continue;
		const char *argv[] = {"HMGET", e->key, "watermark", "spec"};
		struct cron_req *r = req_new(c, i);
		if (rds_async_call(c->rds, cron_on_state, r, 4, argv, NULL)) {
			req_drop(r);
			break;
		}
	}
	if (!c->pending)
		cron_fire(c);
}

static void cron_round(struct cron *c)
{
	if (c->freed || !c->lease[0] || !c->n)
		return;
	if (c->busy) {
		c->again = true;
		return;
	}
	if (!rds_async_is_up(c->rds)) {
		cron_sleep(c, 1.0);
		return;
	}
	c->busy = true;
	const char *argv[] = {"TIME"};
	struct cron_req *r = req_new(c, 0);
	if (rds_async_call(c->rds, cron_on_time, r, 1, argv, NULL)) {
		req_drop(r);
		c->busy = false;
		cron_sleep(c, 1.0);
	}
}

static void cron_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	cron_round(t->data);
}

struct cron *cron_new(struct ev_loop *loop, struct rds_async *rds, const struct config *cfg,
		      char *err, size_t errlen)
{
	struct cron *c = xcalloc(1, sizeof(*c));
	if (!(c->entries = entries_new(cfg, err, errlen))) {
		free(c);
		return NULL;
	}
	c->n = cfg->ncrons;
	c->publish = cfg->cron_publish;
	c->loop = loop;
	c->rds = rds;
	ev_timer_init(&c->w, cron_on_timer, 0.0, 0.0);
	c->w.data = c;
	return c;
}

static bool cron_configured(const struct cron *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->entries[i].cfg->name, name))
			return true;
	return false;
}

/* Entries the leader no longer has leave `forq status`; their hashes
 * expire unless they come back. */
static void cron_on_members(struct rds_reply *x, void *priv)
{
	struct cron *c = priv;
	c->pruning = false;
	if (c->freed) {
		if (!c->pending)
			cron_destroy(c);
		return;
	}
	for (size_t i = 0; x && rds_type(x) == RDS_ARR && i < rds_len(x) && c->lease[0]; i++) {
		const char *name = rds_str(rds_elem(x, i), NULL);
		if (cron_configured(c, name))
			continue;
		char *key = keys_cron(name), ttl[32];
		snprintf(ttl, sizeof(ttl), "%d", CRON_FORGET_AFTER);
		const char *srem[] = {"SREM", KEY_CRONS, name}, *exp[] = {"EXPIRE", key, ttl};
		rds_async_call(c->rds, rds_ignore_reply, NULL, 3, srem, NULL);
		rds_async_call(c->rds, rds_ignore_reply, NULL, 3, exp, NULL);
		if (c->publish)
			cron_unpublish(c, name);
		log_info("cron entry no longer configured; its state expires in 7 days",
			 LF_STR("cron", name));
		free(key);
	}
}

static void cron_unpublish(struct cron *c, const char *name)
{
	char *member = keys_sidekiq_cron_member(name), *job = keys_sidekiq_cron_job(name);
	char *enq = keys_sidekiq_cron_enqueued(name), *jids = keys_sidekiq_cron_jids(name);
	const char *srem[] = {"SREM", KEY_SIDEKIQ_CRON_JOBS, member};
	const char *del[] = {"DEL", job, enq, jids};
	rds_async_call(c->rds, rds_ignore_reply, NULL, 3, srem, NULL);
	rds_async_call(c->rds, rds_ignore_reply, NULL, 4, del, NULL);
	free(member);
	free(job);
	free(enq);
	free(jids);
}

static void cron_prune(struct cron *c)
{
	const char *argv[] = {"SMEMBERS", KEY_CRONS};
	if (c->pruning || !c->lease[0])
		return;
	c->pruning = !rds_async_call(c->rds, cron_on_members, c, 2, argv, NULL);
}

static void cron_forget(struct cron *c)
{
	c->gen++;
	for (size_t i = 0; i < c->n; i++) {
		c->entries[i].wm_known = false;
		c->entries[i].published = false; /* written again, undoing a Delete in the tab */
	}
}

void cron_set_lease(struct cron *c, const char *lease)
{
	if (!strcmp(c->lease, lease ? lease : ""))
		return;
	snprintf(c->lease, sizeof(c->lease), "%s", lease ? lease : "");
	/* Watermarks read under another lease may have moved since. */
	cron_forget(c);
	if (!lease) {
		ev_timer_stop(c->loop, &c->w);
		return;
	}
	/* The new leader catches up at once (the ticks of the gap). */
	cron_round(c);
	cron_prune(c);
}

int cron_reconfigure(struct cron *c, const struct config *cfg, char *err, size_t errlen)
{
	struct cron_entry *e = entries_new(cfg, err, errlen);
	int rc = 0;
	if (!e) {
		/* The old entries point into the old configuration, which the
		 * caller frees: run none rather than dangle. */
		e = xcalloc(1, sizeof(*e));
		rc = -1;
	}
	if (c->pending) {
		/* replies still refer to the old entries by index; the round
		 * ends with them (gen changes below) and a new one starts */
		c->again = true;
	}
	entries_free(c->entries, c->n);
	c->entries = e;
	c->n = rc ? 0 : cfg->ncrons;
	c->publish = cfg->cron_publish;
	cron_forget(c);
	cron_round(c);
	cron_prune(c);
	return rc;
}

void cron_free(struct cron *c)
{
	if (!c)
		return;
	ev_timer_stop(c->loop, &c->w);
	if (c->pending || c->pruning) {
		c->freed = true; /* the last reply frees it */
		return;
	}
	cron_destroy(c);
}

void cron_counts(const struct cron *c, unsigned long long *fired, unsigned long long *skipped)
{
	*fired = c->fired;
	*skipped = c->skipped;
}
