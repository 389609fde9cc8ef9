/* unique: the lock of a unique job through its phases. Every state change
 * is one Lua script (src/lua/unique_*.lua; lose.lua and finish.lua for
 * recovered jobs); every lock has a TTL, and the runtime ones are leases the
 * master keeps alive from the scoreboard, so a node killed outright frees
 * them within the lease. */
#include "unique.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "util.h"

static const char *ms_text(char *buf, size_t n, double seconds)
{
	snprintf(buf, n, "%lld", (long long)(seconds * 1000.0 + 0.5));
	return buf;
}

bool unique_locks_at_push(enum config_unique type)
{
	return type != UNIQUE_NONE && type != UNIQUE_WHILE_EXECUTING;
}

bool unique_lock_of(const struct config *c, const struct job *j, const char *queue,
		    struct unique_lock *l)
{
	const struct config_job *cj = config_find_job(c, j->job_class);
	enum config_unique type = cj ? cj->unique : UNIQUE_NONE;
	if (j->unique && config_unique_parse(j->unique, &type))
		log_warn("unknown forq_unique lock type in payload; using the class's",
			 LF_STR("jid", j->jid), LF_STR("class", j->job_class),
			 LF_STR("forq_unique", j->unique));
	if (type == UNIQUE_NONE)
		return false;
	char *lock = job_lock_string(j->job_class, queue, j->args_json, cj ? cj->unique_args : NULL,
				     cj ? cj->nunique_args : 0);
	if (!lock)
		return false;
	*l = (struct unique_lock){.type = type, .lock = lock, .lease = c->unique_lease};
	l->ttl = j->unique_ttl > 0 ? j->unique_ttl : cj ? cj->unique_ttl : UNIQUE_TTL_DEFAULT;
	return true;
}

void unique_lock_free(struct unique_lock *l)
{
	free(l->lock);
	l->lock = NULL;
}

int unique_push(struct rds *r, const struct unique_lock *l, const char *jid,
		const char *payload, const char *queue, double at, double ttl, char *holder,
		size_t holderlen, char *err, size_t errlen)
{
	char ms[32], score[40] = "";
	char *qkey = keys_queue(queue);
	if (at > 0)
		job_format_time(score, sizeof(score), at);
	const char *argv[] = {at > 0 ? KEY_SCHEDULE : qkey, KEY_QUEUES, KEY_UNIQUE_PREFIX, l->lock,
			      jid, ms_text(ms, sizeof(ms), ttl), payload, queue, score};
	struct rds_reply *x = rds_eval(r, LUA_UNIQUE_PUSH, 2, 9, argv, NULL);
	int rc = -1;
	free(qkey);
	if (!x) {
		snprintf(err, errlen, "%s", rds_errstr(r));
	} else if (rds_type(x) != RDS_ARR || rds_len(x) != 2) {
		snprintf(err, errlen, "%s", rds_type(x) == RDS_ERR ? rds_str(x, NULL) : "bad reply");
	} else {
		rc = rds_int(rds_elem(x, 0)) == 1;
		snprintf(holder, holderlen, "%s", rds_str(rds_elem(x, 1), NULL));
	}
	rds_free(x);
	return rc;
}

int unique_start(struct rds *r, struct unique_lock *l, const char *jid, const char *working,
		 const char *payload, char *holder, size_t holderlen)
{
	char lease[32], ttl[32], later[40];
	job_format_time(later, sizeof(later),
			util_now_wall() + UNIQUE_RETRY_IN * (0.8 + 0.4 * util_random()));
	const char *argv[] = {working, KEY_SCHEDULE, KEY_UNIQUE_PREFIX, l->lock, jid,
			      config_unique_name(l->type), ms_text(lease, sizeof(lease), l->lease),
			      ms_text(ttl, sizeof(ttl), l->ttl), payload, later};
	struct rds_reply *x = rds_eval(r, LUA_UNIQUE_START, 2, 10, argv, NULL);
	if (!x || rds_type(x) == RDS_ERR) { /* LOADING, BUSY...: try again */
		rds_free(x);
		return -1;
	}
	int v = UNIQUE_RUN; /* a reply we do not know must not lose the job: run it */
	if (rds_type(x) == RDS_ARR && rds_len(x) == 3) {
		const char *verdict = rds_str(rds_elem(x, 0), NULL);
		v = !strcmp(verdict, "drop") ? UNIQUE_DROP : !strcmp(verdict, "later") ? UNIQUE_LATER
										 : UNIQUE_RUN;
		snprintf(l->key, sizeof(l->key), "%s", rds_str(rds_elem(x, 1), NULL));
		snprintf(holder, holderlen, "%s", rds_str(rds_elem(x, 2), NULL));
	} else {
		log_error("unique lock script answered oddly; running the job without its lock",
			  LF_STR("jid", jid));
		l->key[0] = '\0';
	}
	rds_free(x);
	return v;
}

int unique_end(struct rds *r, const struct unique_lock *l, const char *jid, const char *outcome,
	       double retry_at)
{
	char ms[32];
	const char *lock = "keep", *run = "keep";
	if (!l->key[0])
		return 0;
	if (l->type == UNIQUE_UNTIL_EXECUTED) {
		if (!strcmp(outcome, "retry"))
			lock = ms_text(ms, sizeof(ms), retry_at - util_now_wall() + l->ttl);
		else if (!strcmp(outcome, "requeue"))
			lock = ms_text(ms, sizeof(ms), l->ttl);
		else
			lock = "release"; /* ack, dead, discard */
	} else if (l->type == UNIQUE_WHILE_EXECUTING || l->type == UNIQUE_UNTIL_AND_WHILE_EXECUTING) {
		run = "release";
	} else {
		return 0; /* until_executing: released at start; until_expired: TTL only */
	}
	const char *argv[] = {l->key, jid, lock, run};
	struct rds_reply *x = rds_eval(r, LUA_UNIQUE_END, 1, 4, argv, NULL);
	int rc = x && rds_type(x) != RDS_ERR ? 0 : -1; /* an error reply: try again */
	rds_free(x);
	return rc;
}

void unique_publish(struct sb_cell *cell, const struct unique_lock *l)
{
	int32_t hold = l->type == UNIQUE_UNTIL_EXECUTED ? UNIQUE_HOLD_LOCK
		       : l->type == UNIQUE_WHILE_EXECUTING ||
				 l->type == UNIQUE_UNTIL_AND_WHILE_EXECUTING
			       ? UNIQUE_HOLD_RUN
			       : 0;
	if (!hold || !l->key[0])
		return;
	util_strlcpy(cell->lock_key, l->key, sizeof(cell->lock_key));
	cell->lock_ttl = l->ttl;
	__atomic_store_n(&cell->lock_hold, hold, __ATOMIC_RELEASE);
}

void unique_unpublish(struct sb_cell *cell)
{
	__atomic_store_n(&cell->lock_hold, 0, __ATOMIC_RELEASE);
}

/* ---- master: lease renewal ---------------------------------------------- */

struct unique {
	struct ev_loop *loop;
	struct rds_async *rds;
	const struct scoreboard *sb;
	double lease;
	ev_timer w;
};

/* No priv: a reply may come after unique_free. */
static void unique_on_renewed(struct rds_reply *x, void *priv)
{
	(void)priv;
	if (x && rds_type(x) == RDS_ERR)
		log_error("unique lease renewal failed", LF_STR("error", rds_str(x, NULL)));
}

static void unique_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct unique *u = t->data;
	size_t n = u->sb->nused, k = 0, nkeys = 0;
	char ms[32], (*keys)[KEYS_UNIQUE_LOCK_SIZE + 4] = xcalloc(2 * n + 1, sizeof(*keys));
	char (*jids)[sizeof(((struct sb_cell *)0)->jid)] = xcalloc(2 * n + 1, sizeof(*jids));
	const char **argv = xcalloc(4 * n + 2, sizeof(*argv));
	(void)loop;
	(void)revents;
	for (size_t i = 0; i < n; i++) {
		const struct sb_cell *c = scoreboard_cell(u->sb, (int)i);
		int32_t hold = __atomic_load_n(&c->lock_hold, __ATOMIC_ACQUIRE);
		if (!hold || c->pid <= 0 || c->state != SB_BUSY)
			continue;
		/* A torn copy (the job just changed) fails the compare: harmless. */
		for (int bit = UNIQUE_HOLD_LOCK; bit <= UNIQUE_HOLD_RUN; bit <<= 1) {
			if (!(hold & bit))
				continue;
			snprintf(keys[nkeys], sizeof(keys[nkeys]), "%.*s%s", KEYS_UNIQUE_LOCK_SIZE - 1, c->lock_key,
				 bit == UNIQUE_HOLD_RUN ? ":run" : "");
			memcpy(jids[nkeys], c->jid, sizeof(jids[nkeys]));
			jids[nkeys][sizeof(jids[nkeys]) - 1] = '\0';
			nkeys++;
		}
	}
	for (size_t i = 0; i < nkeys; i++)
		argv[k++] = keys[i];
	argv[k++] = ms_text(ms, sizeof(ms), u->lease);
	for (size_t i = 0; i < nkeys; i++)
		argv[k++] = jids[i];
	if (nkeys)
		rds_async_eval(u->rds, unique_on_renewed, NULL, LUA_UNIQUE_RENEW, (int)nkeys, (int)k,
			       argv, NULL);
	free(argv);
	free(jids);
	free(keys);
}

struct unique *unique_new(struct ev_loop *loop, struct rds_async *rds,
			  const struct scoreboard *sb, double lease)
{
	struct unique *u = xcalloc(1, sizeof(*u));
	u->loop = loop;
	u->rds = rds;
	u->sb = sb;
	u->lease = lease;
	ev_timer_init(&u->w, unique_on_timer, lease / 3, lease / 3);
	u->w.data = u;
	ev_timer_start(loop, &u->w);
	return u;
}

void unique_free(struct unique *u)
{
	if (!u)
		return;
	ev_timer_stop(u->loop, &u->w);
	free(u);
}
