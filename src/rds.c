/* rds: hiredis behind a small API. Replies are hiredis replies seen through
 * an opaque type, so no other module depends on hiredis headers. */
#include "rds.h"

#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "sentinel.h"
#include "util.h"

#define RDS_BACKOFF_MIN 0.1
#define RDS_BACKOFF_MAX 10.0
#define RDS_CONNECT_TIMEOUT 5.0

#define R(x) ((redisReply *)(void *)(x))

enum rds_type rds_type(const struct rds_reply *x)
{
	switch (R(x)->type) {
	case REDIS_REPLY_INTEGER:
		return RDS_INT;
	case REDIS_REPLY_STRING:
		return RDS_STR;
	case REDIS_REPLY_ARRAY:
		return RDS_ARR;
	case REDIS_REPLY_ERROR:
		return RDS_ERR;
	case REDIS_REPLY_STATUS:
		return RDS_STATUS;
	default:
		return RDS_NIL;
	}
}

long long rds_int(const struct rds_reply *x)
{
	return R(x)->type == REDIS_REPLY_INTEGER ? R(x)->integer : 0;
}

const char *rds_str(const struct rds_reply *x, size_t *len)
{
	redisReply *r = R(x);
	bool text = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
		    r->type == REDIS_REPLY_ERROR;
	if (len)
		*len = text ? r->len : 0;
	return text ? r->str : "";
}

size_t rds_len(const struct rds_reply *x)
{
	return R(x)->type == REDIS_REPLY_ARRAY ? R(x)->elements : 0;
}

struct rds_reply *rds_elem(const struct rds_reply *x, size_t i)
{
	return (struct rds_reply *)(void *)R(x)->element[i];
}

void rds_free(struct rds_reply *x)
{
	if (x)
		freeReplyObject(x);
}

static struct timeval to_tv(double s)
{
	struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
	return tv;
}

/* ---- synchronous ------------------------------------------------------ */

struct rds {
	redisContext *c;
	char err[256];
};

/* SHA1 of each embedded script as Redis reported it (per process). */
static char script_sha[LUA_SCRIPT_COUNT][41];

static int rds_handshake(struct rds *r, const struct rdsurl *u, char *err, size_t n)
{
	redisReply *x = NULL;
	if (u->password[0]) {
		if (u->user[0])
			x = redisCommand(r->c, "AUTH %s %s", u->user, u->password);
		else
			x = redisCommand(r->c, "AUTH %s", u->password);
		if (!x || x->type == REDIS_REPLY_ERROR) {
			snprintf(err, n, "redis authentication failed: %s",
				 x ? x->str : r->c->errstr);
			goto out_fail;
		}
		freeReplyObject(x);
	}
	if (u->db) {
		x = redisCommand(r->c, "SELECT %d", u->db);
		if (!x || x->type == REDIS_REPLY_ERROR) {
			snprintf(err, n, "redis SELECT %d failed: %s", u->db,
				 x ? x->str : r->c->errstr);
			goto out_fail;
		}
		freeReplyObject(x);
	}
	return 0;
out_fail:
	if (x)
		freeReplyObject(x);
	return -1;
}

struct rds *rds_open(const struct rdsurl *u, double timeout, char *err, size_t n)
{
	/* sentinel hook: ask the sentinels, then rds_open the master they name */
	if (u->nsentinels)
		return sentinel_open(u, timeout, err, n);
	/* until the TLS transport lands, rediss+sentinel:// must not fall back
	 * to plain text */
	if (u->tls) {
		snprintf(err, n, "TLS (rediss+sentinel://) is not supported by this build");
		return NULL;
	}
	struct rds *r = xcalloc(1, sizeof(*r));
	struct timeval tv = to_tv(timeout);
	r->c = u->path[0] ? redisConnectUnixWithTimeout(u->path, tv)
			  : redisConnectWithTimeout(u->host, u->port, tv);
	if (!r->c || r->c->err) {
		snprintf(err, n, "cannot connect to redis at %s%s%d: %s",
			 u->path[0] ? u->path : u->host, u->path[0] ? "" : ":",
			 u->path[0] ? 0 : u->port, r->c ? r->c->errstr : "out of memory");
		goto out_free;
	}
	redisSetTimeout(r->c, tv);
	if (!u->path[0])
		redisEnableKeepAlive(r->c);
	if (rds_handshake(r, u, err, n))
		goto out_free;
	return r;
out_free:
	rds_close(r);
	return NULL;
}

void rds_close(struct rds *r)
{
	if (!r)
		return;
	if (r->c)
		redisFree(r->c);
	free(r);
}

const char *rds_errstr(const struct rds *r)
{
	return r->c && r->c->err ? r->c->errstr : r->err;
}

/* An error reply is remembered for rds_errstr, as an I/O error is. */
static redisReply *rds_note(struct rds *r, redisReply *x)
{
	if (x && x->type == REDIS_REPLY_ERROR)
		snprintf(r->err, sizeof(r->err), "%s", x->str);
	return x;
}

struct rds_reply *rds_call(struct rds *r, int argc, const char **argv, const size_t *lens)
{
	return (struct rds_reply *)(void *)rds_note(r, redisCommandArgv(r->c, argc, argv, lens));
}

struct rds_reply *rds_callv(struct rds *r, const char *arg0, ...)
{
	const char *argv[32];
	int argc = 0;
	va_list ap;
	va_start(ap, arg0);
	for (const char *a = arg0; a && argc < 32; a = va_arg(ap, const char *))
		argv[argc++] = a;
	va_end(ap);
	return rds_call(r, argc, argv, NULL);
}

static int rds_load_script(struct rds *r, enum lua_script s)
{
	redisReply *x = redisCommand(r->c, "SCRIPT LOAD %s", lua_script_source[s]);
	if (!x)
		return -1;
	if (x->type != REDIS_REPLY_STRING || x->len != 40) {
		snprintf(r->err, sizeof(r->err), "SCRIPT LOAD %s: %s", lua_script_name[s],
			 x->type == REDIS_REPLY_ERROR ? x->str : "unexpected reply");
		log_error("cannot load lua script", LF_STR("script", lua_script_name[s]),
			  LF_STR("error", r->err));
		freeReplyObject(x);
		return -1;
	}
	memcpy(script_sha[s], x->str, 41);
	freeReplyObject(x);
	return 0;
}

struct rds_reply *rds_eval(struct rds *r, enum lua_script s, int nkeys, int argc,
			   const char **argv, const size_t *lens)
{
	const char **av;
	size_t *lv;
	char nk[16];
	redisReply *x = NULL;

	if (!script_sha[s][0] && rds_load_script(r, s))
		return NULL;
	av = xmalloc((size_t)(3 + argc) * sizeof(*av));
	lv = xmalloc((size_t)(3 + argc) * sizeof(*lv));
	snprintf(nk, sizeof(nk), "%d", nkeys);
	av[0] = "EVALSHA", lv[0] = 7;
	av[2] = nk, lv[2] = strlen(nk);
	for (int i = 0; i < argc; i++) {
		av[3 + i] = argv[i];
		lv[3 + i] = lens ? lens[i] : strlen(argv[i]);
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		av[1] = script_sha[s], lv[1] = 40;
		x = redisCommandArgv(r->c, 3 + argc, av, lv);
		if (!x || x->type != REDIS_REPLY_ERROR || strncmp(x->str, "NOSCRIPT", 8))
			break;
		/* Redis restarted or SCRIPT FLUSH: load it again, once. */
		freeReplyObject(x);
		x = NULL;
		if (rds_load_script(r, s))
			break;
	}
	free(av);
	free(lv);
	return (struct rds_reply *)(void *)rds_note(r, x);
}

/* ---- asynchronous ----------------------------------------------------- */

struct rds_async {
	struct ev_loop *loop;
	struct rdsurl url;
	char what[32];
	char addr[300];
	redisAsyncContext *ac;
	bool up, closing, down_logged;
	double backoff;
	ev_timer retry_w;
	ev_timer connect_w;
	rds_state_cb on_state;
	void *priv;
	/* sentinel hook: a redis+sentinel:// URL is looked up before each
	 * connect (a->url.host/port then hold the answer) */
	struct sentinel_query *query;
	bool resolving, resolved;
	ev_timer check_w; /* every SENTINEL_RECHECK: still the master they name? */
	char master_addr[300]; /* the master last confirmed, for the switch log */
	bool demoted; /* READONLY or not a master: until ROLE says master again,
		       * reconnects back off and stay quiet */
};

struct rds_call_ctx {
	rds_cb cb;
	void *priv;
};

static void rds_async_connect(struct rds_async *a);

static void rds_async_schedule(struct rds_async *a)
{
	if (a->closing)
		return;
	ev_timer_stop(a->loop, &a->retry_w);
	ev_timer_set(&a->retry_w, a->backoff * (0.8 + 0.4 * util_random()), 0.0);
	ev_timer_start(a->loop, &a->retry_w);
	a->backoff = a->backoff * 2 > RDS_BACKOFF_MAX ? RDS_BACKOFF_MAX : a->backoff * 2;
}

static void rds_async_lost(struct rds_async *a, const char *why)
{
	bool was_up = a->up;
	a->up = false;
	a->ac = NULL;
	ev_timer_stop(a->loop, &a->connect_w);
	if (!a->down_logged && !a->closing) {
		log_warn("redis unavailable; reconnecting with backoff", LF_STR("conn", a->what),
			 LF_STR("redis", a->addr), LF_STR("error", why));
		a->down_logged = true;
	}
	if (was_up && a->on_state)
		a->on_state(false, a->priv);
	rds_async_schedule(a);
}

static void rds_async_on_connect(const redisAsyncContext *ac, int status)
{
	struct rds_async *a = ac->data;
	if (status != REDIS_OK) {
		rds_async_lost(a, ac->errstr); /* hiredis frees ac after this */
		return;
	}
	ev_timer_stop(a->loop, &a->connect_w);
	a->up = true;
	if (!a->demoted) { /* sentinel hook: a read-only node is not back yet */
		a->backoff = RDS_BACKOFF_MIN;
		log_at(a->down_logged ? LOG_INFO : LOG_DEBUG, "redis connected",
		       LF_STR("conn", a->what), LF_STR("redis", a->addr));
		a->down_logged = false;
	}
	if (a->on_state)
		a->on_state(true, a->priv);
}

static void rds_async_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rds_async *a = ac->data;
	(void)status;
	rds_async_lost(a, ac->err ? ac->errstr : "connection closed");
}

static void rds_async_on_handshake(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *x = reply;
	(void)priv;
	if (x && x->type == REDIS_REPLY_ERROR) {
		log_error("redis refused the handshake", LF_STR("error", x->str));
		redisAsyncDisconnect(ac);
	}
}

/* sentinel hook: the node the sentinels named, or a node that answered
 * READONLY before, must say it is the master; else (a failover under way)
 * the connection is dropped and, with sentinels, they are asked again. */
static void rds_async_on_role(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rds_async *a = ac->data;
	redisReply *x = reply;
	(void)priv;
	if (!x)
		return;
	if (x->type == REDIS_REPLY_ARRAY && x->elements > 0 &&
	    x->element[0]->type == REDIS_REPLY_STRING && !strcmp(x->element[0]->str, "master")) {
		if (a->url.nsentinels)
			sentinel_note_master(a->master_addr, sizeof(a->master_addr),
					     a->url.master_name, a->addr, true);
		if (a->demoted) {
			a->demoted = false;
			a->backoff = RDS_BACKOFF_MIN;
			log_info("redis connected", LF_STR("conn", a->what), LF_STR("redis", a->addr));
			a->down_logged = false;
		}
		return;
	}
	if (!a->demoted)
		log_warn("redis is not a master; reconnecting", LF_STR("conn", a->what),
			 LF_STR("redis", a->addr));
	a->demoted = a->down_logged = true;
	redisAsyncDisconnect(ac);
}

static void rds_async_on_found(const char *host, int port, void *priv)
{
	struct rds_async *a = priv;
	char addr[300];
	if (!a->resolving) { /* a check (rds_async_on_check) */
		snprintf(addr, sizeof(addr), "%s:%d", host ? host : "", port);
		if (host && a->up && a->ac && strcmp(addr, a->addr)) {
			log_info("the sentinels name another redis master; reconnecting",
				 LF_STR("conn", a->what), LF_STR("from", a->addr), LF_STR("to", addr));
			redisAsyncDisconnect(a->ac);
		}
		return;
	}
	a->resolving = false;
	if (!host) {
		rds_async_lost(a, "no sentinel named the master");
		return;
	}
	util_strlcpy(a->url.host, host, sizeof(a->url.host));
	a->url.port = port;
	snprintf(a->addr, sizeof(a->addr), "%s:%d", host, port);
	a->resolved = true;
	rds_async_connect(a);
}

static void rds_async_on_check(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct rds_async *a = t->data;
	(void)loop;
	(void)revents;
	if (a->up && !a->resolving)
		sentinel_query_start(a->query);
}

static void rds_async_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct rds_async *a = t->data;
	(void)loop;
	(void)revents;
	rds_async_connect(a);
}

/* No connect timeout in hiredis 0.14's async API: we keep our own. */
static void rds_async_on_connect_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct rds_async *a = t->data;
	(void)loop;
	(void)revents;
	if (a->ac && !a->up) {
		/* Not connected yet, so hiredis would call no disconnect callback:
		 * free it here and count it as a failed attempt. */
		redisAsyncContext *ac = a->ac;
		a->ac = NULL;
		redisAsyncFree(ac);
		rds_async_lost(a, "connect timed out");
	}
}

static void rds_async_connect(struct rds_async *a)
{
	const struct rdsurl *u = &a->url;
	/* sentinel hook: each connect first asks the sentinels, without
	 * blocking; rds_async_on_found comes back here with the answer */
	if (u->nsentinels && !a->resolved) {
		a->resolving = true;
		sentinel_query_start(a->query);
		return;
	}
	a->resolved = false;
	if (u->tls) { /* as in rds_open: never plain text when TLS was asked for */
		rds_async_lost(a, "TLS (rediss+sentinel://) is not supported by this build");
		return;
	}
	a->ac = u->path[0] ? redisAsyncConnectUnix(u->path) : redisAsyncConnect(u->host, u->port);
	if (!a->ac || a->ac->err) {
		const char *why = a->ac ? a->ac->errstr : "out of memory";
		if (a->ac)
			redisAsyncFree(a->ac);
		a->ac = NULL;
		rds_async_lost(a, why);
		return;
	}
	a->ac->data = a;
	redisLibevAttach(a->loop, a->ac);
	redisAsyncSetConnectCallback(a->ac, rds_async_on_connect);
	redisAsyncSetDisconnectCallback(a->ac, rds_async_on_disconnect);
	/* Queued now, sent first once the socket connects. */
	if (u->password[0] && u->user[0])
		redisAsyncCommand(a->ac, rds_async_on_handshake, NULL, "AUTH %s %s", u->user,
				  u->password);
	else if (u->password[0])
		redisAsyncCommand(a->ac, rds_async_on_handshake, NULL, "AUTH %s", u->password);
	if (u->db)
		redisAsyncCommand(a->ac, rds_async_on_handshake, NULL, "SELECT %d", u->db);
	if (u->nsentinels || a->demoted) /* sentinel hook */
		redisAsyncCommand(a->ac, rds_async_on_role, NULL, "ROLE");
	ev_timer_set(&a->connect_w, RDS_CONNECT_TIMEOUT, 0.0);
	ev_timer_start(a->loop, &a->connect_w);
}

struct rds_async *rds_async_new(struct ev_loop *loop, const struct rdsurl *u, const char *what,
				rds_state_cb on_state, void *priv)
{
	struct rds_async *a = xcalloc(1, sizeof(*a));
	a->loop = loop;
	a->url = *u;
	snprintf(a->what, sizeof(a->what), "%s", what);
	if (u->nsentinels) { /* sentinel hook */
		snprintf(a->addr, sizeof(a->addr), "sentinel:%s", u->master_name);
		a->query = sentinel_query_new(loop, u, rds_async_on_found, a);
		ev_timer_init(&a->check_w, rds_async_on_check, SENTINEL_RECHECK, SENTINEL_RECHECK);
		a->check_w.data = a;
		ev_timer_start(loop, &a->check_w);
	} else if (u->path[0])
		snprintf(a->addr, sizeof(a->addr), "unix:%s", u->path);
	else
		snprintf(a->addr, sizeof(a->addr), "%s:%d", u->host, u->port);
	a->backoff = RDS_BACKOFF_MIN;
	a->on_state = on_state;
	a->priv = priv;
	ev_timer_init(&a->retry_w, rds_async_on_timer, 0.0, 0.0);
	a->retry_w.data = a;
	ev_timer_init(&a->connect_w, rds_async_on_connect_timeout, 0.0, 0.0);
	a->connect_w.data = a;
	rds_async_connect(a);
	return a;
}

void rds_async_free(struct rds_async *a)
{
	if (!a)
		return;
	a->closing = true;
	a->on_state = NULL;
	ev_timer_stop(a->loop, &a->retry_w);
	ev_timer_stop(a->loop, &a->connect_w);
	if (a->query) { /* sentinel hook */
		ev_timer_stop(a->loop, &a->check_w);
		sentinel_query_free(a->query);
	}
	if (a->ac) {
		redisAsyncContext *ac = a->ac;
		a->ac = NULL;
		ac->data = a;
		redisAsyncFree(ac); /* runs pending callbacks with NULL, then on_disconnect */
	}
	free(a);
}

void rds_ignore_reply(struct rds_reply *reply, void *priv)
{
	(void)reply;
	(void)priv;
}

void rds_async_forget(struct rds_async *a)
{
	if (a && a->ac && a->ac->c.fd >= 0)
		close(a->ac->c.fd);
	if (a)
		sentinel_query_forget(a->query); /* sentinel hook */
}

bool rds_async_is_up(const struct rds_async *a)
{
	return a->up;
}

static void rds_async_trampoline(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rds_call_ctx *x = priv;
	redisReply *r = reply;
	/* sentinel hook: READONLY means this node was demoted to a replica
	 * (a failover): the command did not happen, the connection goes, and
	 * the reconnect asks the sentinels again. */
	struct rds_async *a = ac->data;
	if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "READONLY", 8)) {
		if (!a->demoted) /* once, not per pending reply or reconnect */
			log_warn("redis is read-only (demoted to a replica?); reconnecting",
				 LF_STR("conn", a->what), LF_STR("redis", a->addr));
		a->demoted = a->down_logged = true;
		redisAsyncDisconnect(ac);
		reply = NULL;
	}
	x->cb((struct rds_reply *)reply, x->priv);
	free(x);
}

int rds_async_call(struct rds_async *a, rds_cb cb, void *priv, int argc, const char **argv,
		   const size_t *lens)
{
	if (!a->up || !a->ac)
		return -1;
	struct rds_call_ctx *x = xmalloc(sizeof(*x));
	x->cb = cb;
	x->priv = priv;
	if (redisAsyncCommandArgv(a->ac, rds_async_trampoline, x, argc, argv, lens) != REDIS_OK) {
		free(x);
		return -1;
	}
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
