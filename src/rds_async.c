/* rds_async: the master's non-blocking Redis connection on libev. One io
 * watcher drives rds_conn (connect, TLS handshake, reads, writes); hiredis
 * formats the commands and its reader parses the replies; callbacks wait in
 * a FIFO and each runs exactly once (with NULL when the connection goes). */
#include "rds.h"

#include <ev.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rds_conn.h"
#include "rds_int.h"
#include "sentinel.h"
#include "util.h"

enum rds_async_state {
	RA_DOWN,       /* waiting for the retry timer */
	RA_CONNECTING, /* connect(2) and TLS handshake */
	RA_HANDSHAKE,  /* AUTH / SELECT / PING sent, replies pending */
	RA_UP,
};

struct rds_pending {
	rds_cb cb;
	void *priv;
	struct rds_pending *next;
};

struct rds_async {
	struct ev_loop *loop;
	struct rdsurl url;
	char what[32];
	char addr[300];
	enum rds_async_state state;
	struct rds_conn c;
	redisReader *reader;
	int handshake_total; /* handshake commands sent */
	int handshake_left;  /* their replies still to come */
	char *out;           /* formatted commands not yet written */
	size_t out_len, out_off, out_cap;
	int write_want; /* what the last write waited for; 0 if none */
	struct rds_pending *head, *tail;
	bool closing, down_logged;
	bool *freed; /* set when the struct is freed inside a callback */
	char last_err[300];
	double backoff;
	ev_io io_w;
	ev_timer retry_w;
	ev_timer connect_w;
	rds_state_cb on_state;
	void *priv;
	/* sentinel hook: a redis+sentinel:// URL is looked up before each
	 * connect (a->url.host/port then hold the answer); the node must say
	 * it is the master (ROLE, the last handshake command) */
	struct sentinel_query *query;
	bool resolving, resolved;
	ev_timer check_w; /* every SENTINEL_RECHECK: still the master they name? */
	char master_addr[300]; /* the master last confirmed, for the switch log */
	bool demoted;  /* READONLY or not a master: ROLE is checked on reconnect,
			* and until it says master the backoff keeps growing */
	int role_idx;  /* handshake reply that is ROLE's; -1 when none */
};

static void ra_connect(struct rds_async *a);

static void ra_schedule(struct rds_async *a)
{
	if (a->closing)
		return;
	ev_timer_stop(a->loop, &a->retry_w);
	ev_timer_set(&a->retry_w, a->backoff * (0.8 + 0.4 * util_random()), 0.0);
	ev_timer_start(a->loop, &a->retry_w);
	a->backoff = a->backoff * 2 > RDS_BACKOFF_MAX ? RDS_BACKOFF_MAX : a->backoff * 2;
}

/* Runs every waiting callback with NULL. true when one of them freed a. */
static bool ra_drain(struct rds_async *a)
{
	bool freed = false;
	while (a->head && !freed) {
		struct rds_pending *p = a->head;
		a->head = p->next;
		if (!a->head)
			a->tail = NULL;
		a->freed = &freed;
		p->cb(NULL, p->priv);
		free(p);
	}
	if (!freed)
		a->freed = NULL;
	return freed;
}

/* Drops the socket, TLS state, reader and unsent output. */
static void ra_teardown(struct rds_async *a)
{
	if (a->loop) {
		ev_io_stop(a->loop, &a->io_w);
		ev_timer_stop(a->loop, &a->connect_w);
	}
	rds_conn_close(&a->c);
	if (a->reader)
		redisReaderFree(a->reader);
	a->reader = NULL;
	a->out_len = a->out_off = 0;
	a->write_want = 0;
	a->state = RA_DOWN;
}

/* A connection or an attempt failed: logged when the state or the reason
 * changes (not on every retry), then retried with backoff. */
static void ra_lost(struct rds_async *a, int level, const char *reason)
{
	bool was_up = a->state == RA_UP;
	char why[sizeof(a->last_err)];
	snprintf(why, sizeof(why), "%s", reason);
	ra_teardown(a);
	if (!a->closing && (!a->down_logged || strcmp(why, a->last_err))) {
		log_at(level, "redis unavailable; reconnecting with backoff",
		       LF_STR("conn", a->what), LF_STR("redis", a->addr), LF_STR("error", why));
		a->down_logged = true;
		memcpy(a->last_err, why, sizeof(why));
	}
	if (ra_drain(a))
		return;
	if (was_up && a->on_state)
		a->on_state(false, a->priv);
	ra_schedule(a);
}

static void ra_ready(struct rds_async *a)
{
	ev_timer_stop(a->loop, &a->connect_w);
	a->state = RA_UP;
	a->backoff = RDS_BACKOFF_MIN;
	log_at(a->down_logged ? LOG_INFO : LOG_DEBUG, "redis connected", LF_STR("conn", a->what),
	       LF_STR("redis", a->addr));
	a->down_logged = false;
	a->last_err[0] = '\0';
	if (a->on_state)
		a->on_state(true, a->priv);
}

static void ra_append(struct rds_async *a, const char *buf, size_t len)
{
	if (!len)
		return;
	if (a->out_off == a->out_len)
		a->out_off = a->out_len = 0;
	if (a->out_len + len > a->out_cap) {
		a->out_cap = (a->out_len + len) * 2;
		a->out = xrealloc(a->out, a->out_cap);
	}
	memcpy(a->out + a->out_len, buf, len);
	a->out_len += len;
}

/* Watches what the connection waits for: always readable (replies, and a
 * hang-up), writable while output waits. */
static void ra_watch(struct rds_async *a, int want)
{
	int ev = EV_READ;
	if (want & RDS_WANT_WRITE)
		ev |= EV_WRITE;
	if (ev_is_active(&a->io_w) && (a->io_w.events & (EV_READ | EV_WRITE)) == ev)
		return;
	ev_io_stop(a->loop, &a->io_w);
	ev_io_set(&a->io_w, a->c.fd, ev);
	ev_io_start(a->loop, &a->io_w);
}

/* sentinel hook: ROLE's reply ends the handshake of a sentinel-found node
 * or of a node that answered READONLY: a master goes on, anything else (a
 * failover under way) is dropped and asked again with backoff. */
static int ra_check_role(struct rds_async *a, redisReply *x)
{
	bool master = x->type == REDIS_REPLY_ARRAY && x->elements > 0 &&
		      x->element[0]->type == REDIS_REPLY_STRING &&
		      !strcmp(x->element[0]->str, "master");
	freeReplyObject(x);
	if (!master) {
		if (!a->demoted)
			log_warn("redis is not a master; reconnecting", LF_STR("conn", a->what),
				 LF_STR("redis", a->addr));
		a->demoted = true;
		ra_lost(a, LOG_WARN, "not a master (a replica)");
		return -1;
	}
	if (a->url.nsentinels)
		sentinel_note_master(a->master_addr, sizeof(a->master_addr), a->url.master_name,
				     a->addr, true);
	a->demoted = false;
	if (!a->handshake_left)
		ra_ready(a);
	return a->state == RA_UP || a->state == RA_HANDSHAKE ? 0 : -1;
}

/* One reply: the handshake's, or the oldest waiting callback's. -1 when
 * the connection is gone (or a was freed) and nothing more may be read. */
static int ra_dispatch(struct rds_async *a, redisReply *x)
{
	char err[300];
	bool freed = false;
	if (a->state == RA_HANDSHAKE) {
		int idx = a->handshake_total - a->handshake_left--;
		if (idx == a->role_idx) /* sentinel hook */
			return ra_check_role(a, x);
		if (rds_handshake_check(&a->url, idx, x, err, sizeof(err))) {
			freeReplyObject(x);
			ra_lost(a, LOG_ERROR, err);
			return -1;
		}
		freeReplyObject(x);
		if (!a->handshake_left)
			ra_ready(a);
		/* more handshake replies may wait in the same read */
		return a->state == RA_UP || a->state == RA_HANDSHAKE ? 0 : -1;
	}
	struct rds_pending *p = a->head;
	if (!p) {
		freeReplyObject(x);
		ra_lost(a, LOG_WARN, "reply without a command");
		return -1;
	}
	a->head = p->next;
	if (!a->head)
		a->tail = NULL;
	/* sentinel hook: READONLY means this node was demoted to a replica (a
	 * failover): the command did not happen, the connection goes, and the
	 * reconnect checks ROLE (and asks the sentinels again) */
	bool readonly = x->type == REDIS_REPLY_ERROR && !strncmp(x->str, "READONLY", 8);
	a->freed = &freed;
	p->cb(readonly ? NULL : (struct rds_reply *)(void *)x, p->priv);
	free(p);
	freeReplyObject(x);
	if (freed)
		return -1;
	a->freed = NULL;
	if (readonly) {
		if (!a->demoted) /* once, not per reconnect */
			log_warn("redis is read-only (demoted to a replica?); reconnecting",
				 LF_STR("conn", a->what), LF_STR("redis", a->addr));
		a->demoted = true;
		ra_lost(a, LOG_WARN, "READONLY: the node is a replica");
		return -1;
	}
	return a->state == RA_UP ? 0 : -1;
}

/* Reads what is there and hands out the replies; the want of the read. */
static int ra_read(struct rds_async *a, int *want)
{
	char buf[RDS_READ_CHUNK];
	for (;;) {
		void *x = NULL;
		ssize_t k = rds_conn_read(&a->c, buf, sizeof(buf), want);
		if (k < 0) {
			/* during the handshake: most likely the server refusing
			 * our TLS client certificate (its alert comes late) */
			ra_lost(a, a->state == RA_HANDSHAKE ? LOG_ERROR : LOG_WARN, a->c.err);
			return -1;
		}
		if (!k)
			return 0;
		if (redisReaderFeed(a->reader, buf, (size_t)k) != REDIS_OK)
			rds_oom();
		while (redisReaderGetReply(a->reader, &x) == REDIS_OK && x)
			if (ra_dispatch(a, x))
				return -1;
		if (a->reader->err) {
			ra_lost(a, LOG_WARN, a->reader->errstr);
			return -1;
		}
	}
}

static int ra_flush(struct rds_async *a)
{
	a->write_want = 0;
	while (a->out_off < a->out_len) {
		ssize_t k = rds_conn_write(&a->c, a->out + a->out_off, a->out_len - a->out_off,
		                           &a->write_want);
		if (k < 0) {
			rds_conn_explain(&a->c);
			ra_lost(a, a->state == RA_HANDSHAKE ? LOG_ERROR : LOG_WARN, a->c.err);
			return -1;
		}
		if (!k)
			break;
		a->out_off += (size_t)k;
	}
	return 0;
}

/* Connected (and through TLS): the handshake commands go out first. */
static void ra_transport_ready(struct rds_async *a)
{
	char *buf;
	size_t len;
	a->handshake_total = rds_handshake_format(&a->url, &buf, &len);
	a->state = RA_HANDSHAKE;
	if (!(a->reader = redisReaderCreate()))
		rds_oom();
	ra_append(a, buf, len);
	free(buf);
	a->role_idx = -1;
	if (a->url.nsentinels || a->demoted) { /* sentinel hook */
		ra_append(a, "*1\r\n$4\r\nROLE\r\n", 14);
		a->role_idx = a->handshake_total++;
	}
	a->handshake_left = a->handshake_total;
	if (!a->handshake_left)
		ra_ready(a);
}

static void ra_step(struct rds_async *a)
{
	int want = 0, rwant = 0, rc;
	if (a->state == RA_CONNECTING) {
		if ((rc = rds_conn_progress(&a->c, &want)) < 0) {
			/* a refused TLS handshake needs a human; a refused
			 * connect is an outage like any other */
			ra_lost(a, a->c.connecting ? LOG_WARN : LOG_ERROR, a->c.err);
			return;
		}
		if (rc == 1) {
			ra_watch(a, want);
			return;
		}
		ra_transport_ready(a);
		if (a->state == RA_DOWN || a->closing)
			return;
	}
	if (ra_flush(a) || ra_read(a, &rwant) || ra_flush(a))
		return;
	ra_watch(a, (a->out_off < a->out_len ? a->write_want : 0) | rwant);
}

static void ra_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	ra_step(w->data);
}

static void ra_on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	ra_connect(t->data);
}

/* Covers the connect, the TLS handshake and the handshake commands. */
static void ra_on_connect_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct rds_async *a = t->data;
	(void)loop;
	(void)revents;
	if (a->state == RA_CONNECTING || a->state == RA_HANDSHAKE)
		ra_lost(a, LOG_WARN, "connect timed out");
}

static void ra_connect(struct rds_async *a)
{
	/* sentinel hook: each connect first asks the sentinels, without
	 * blocking; ra_on_found comes back here with the answer */
	if (a->url.nsentinels && !a->resolved) {
		a->resolving = true;
		sentinel_query_start(a->query);
		return;
	}
	a->resolved = false;
	if (rds_conn_start(&a->c, &a->url)) {
		ra_lost(a, LOG_WARN, a->c.err);
		return;
	}
	a->state = RA_CONNECTING;
	ev_timer_set(&a->connect_w, RDS_CONNECT_TIMEOUT, 0.0);
	ev_timer_start(a->loop, &a->connect_w);
	/* driven from the loop only: on_state must never run inside
	 * rds_async_new, before its caller has the handle */
	ra_watch(a, RDS_WANT_WRITE);
}

/* sentinel hook: the answer to a lookup (resolving) or to a check */
static void ra_on_found(const char *host, int port, void *priv)
{
	struct rds_async *a = priv;
	char addr[300];
	snprintf(addr, sizeof(addr), "%s:%d", host ? host : "", port);
	if (!a->resolving) { /* a check: a graceful failover leaves the old
			      * master writable until the sentinels demote it */
		if (host && a->state == RA_UP && strcmp(addr, a->addr)) {
			log_info("the sentinels name another redis master; reconnecting",
				 LF_STR("conn", a->what), LF_STR("from", a->addr), LF_STR("to", addr));
			ra_lost(a, LOG_INFO, "the sentinels name another master");
		}
		return;
	}
	a->resolving = false;
	if (!host) {
		ra_lost(a, LOG_WARN, "no sentinel named the master");
		return;
	}
	snprintf(a->url.host, sizeof(a->url.host), "%s", host);
	a->url.port = port;
	snprintf(a->addr, sizeof(a->addr), "%s", addr);
	a->resolved = true;
	ra_connect(a);
}

static void ra_on_check(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct rds_async *a = t->data;
	(void)loop;
	(void)revents;
	if (a->state == RA_UP && !a->resolving)
		sentinel_query_start(a->query);
}

struct rds_async *rds_async_new(struct ev_loop *loop, const struct rdsurl *u, const char *what,
                                rds_state_cb on_state, void *priv)
{
	struct rds_async *a = xcalloc(1, sizeof(*a));
	a->loop = loop;
	a->url = *u;
	a->c.fd = -1;
	snprintf(a->what, sizeof(a->what), "%s", what);
	rds_conn_describe(u, a->addr, sizeof(a->addr));
	if (u->nsentinels) { /* sentinel hook */
		snprintf(a->addr, sizeof(a->addr), "sentinel:%s", u->master_name);
		a->query = sentinel_query_new(loop, u, ra_on_found, a);
		ev_timer_init(&a->check_w, ra_on_check, SENTINEL_RECHECK, SENTINEL_RECHECK);
		a->check_w.data = a;
		ev_timer_start(loop, &a->check_w);
	}
	a->backoff = RDS_BACKOFF_MIN;
	a->on_state = on_state;
	a->priv = priv;
	ev_init(&a->io_w, ra_on_io);
	a->io_w.data = a;
	ev_timer_init(&a->retry_w, ra_on_retry, 0.0, 0.0);
	a->retry_w.data = a;
	ev_timer_init(&a->connect_w, ra_on_connect_timeout, 0.0, 0.0);
	a->connect_w.data = a;
	ra_connect(a);
	return a;
}

void rds_async_free(struct rds_async *a)
{
	if (!a)
		return;
	a->closing = true;
	a->on_state = NULL;
	if (a->freed)
		*a->freed = true; /* we are inside one of its callbacks */
	a->freed = NULL;
	ev_timer_stop(a->loop, &a->retry_w);
	if (a->query) { /* sentinel hook */
		ev_timer_stop(a->loop, &a->check_w);
		sentinel_query_free(a->query);
		a->query = NULL;
	}
	ra_teardown(a);
	ra_drain(a);
	free(a->out);
	memset(&a->url, 0, sizeof(a->url)); /* the password */
	free(a);
}

void rds_ignore_reply(struct rds_reply *reply, void *priv)
{
	(void)reply;
	(void)priv;
}

/* The child's loop is gone already (the watchers with it). The callbacks'
 * owners belong to the parent, so none runs here: they are dropped. */
void rds_async_forget(struct rds_async *a)
{
	if (!a)
		return;
	a->loop = NULL;
	a->closing = true;
	a->on_state = NULL;
	sentinel_query_forget(a->query); /* sentinel hook */
	ra_teardown(a);
	/* The pending requests stay listed, callbacks never run: their
	 * private data belongs to the parent's modules (a cron round, a
	 * recovery) whose copies this child keeps but never uses, and it must
	 * stay reachable, as in the parent, or the child's leak check counts
	 * it when the child exits. */
	free(a->out);
	a->out = NULL;
	a->out_cap = 0;
}

bool rds_async_is_up(const struct rds_async *a)
{
	return a->state == RA_UP;
}

int rds_async_call(struct rds_async *a, rds_cb cb, void *priv, int argc, const char **argv,
                   const size_t *lens)
{
	char *cmd = NULL;
	int len;
	if (a->state != RA_UP || a->closing)
		return -1;
	if ((len = redisFormatCommandArgv(&cmd, argc, argv, lens)) < 0)
		rds_oom();
	ra_append(a, cmd, (size_t)len);
	redisFreeCommand(cmd);
	struct rds_pending *p = xmalloc(sizeof(*p));
	p->cb = cb;
	p->priv = priv;
	p->next = NULL;
	if (a->tail)
		a->tail->next = p;
	else
		a->head = p;
	a->tail = p;
	/* written from the loop, never from here: a failed write would run
	 * callbacks inside the caller's call */
	ra_watch(a, RDS_WANT_WRITE);
	return 0;
}

int rds_async_eval(struct rds_async *a, rds_cb cb, void *priv, enum lua_script s, int nkeys,
                   int argc, const char **argv, const size_t *lens)
{
	const char **av = xmalloc((size_t)(3 + argc) * sizeof(*av));
	size_t *lv = xmalloc((size_t)(3 + argc) * sizeof(*lv));
	char nk[16];
	snprintf(nk, sizeof(nk), "%d", nkeys);
	av[0] = "EVAL", lv[0] = 4;
	av[1] = lua_script_source[s], lv[1] = strlen(lua_script_source[s]);
	av[2] = nk, lv[2] = strlen(nk);
	for (int i = 0; i < argc; i++) {
		av[3 + i] = argv[i];
		lv[3 + i] = lens ? lens[i] : strlen(argv[i]);
	}
	int rc = rds_async_call(a, cb, priv, 3 + argc, av, lv);
	free(av);
	free(lv);
	return rc;
}
