/* rds: replies and synchronous connections. Replies are hiredis replies
 * (from its I/O-free reader) seen through an opaque type, so no other
 * module depends on hiredis headers; the socket and TLS are rds_conn's. */
#include "rds.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rds_conn.h"
#include "rds_int.h"
#include "sentinel.h"
#include "util.h"

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

_Noreturn void rds_oom(void)
{
	fputs("forq: out of memory in the redis reader\n", stderr);
	abort();
}

/* ---- handshake (both sides) ------------------------------------------ */

static void append_cmd(char **buf, size_t *len, int argc, const char **argv)
{
	char *cmd = NULL;
	int n = redisFormatCommandArgv(&cmd, argc, argv, NULL);
	if (n < 0)
		rds_oom(); /* hiredis fails only on allocation */
	*buf = xrealloc(*buf, *len + (size_t)n);
	memcpy(*buf + *len, cmd, (size_t)n);
	*len += (size_t)n;
	redisFreeCommand(cmd);
}

int rds_handshake_format(const struct rdsurl *u, char **buf, size_t *len)
{
	char db[16];
	int n = 0;
	*buf = NULL;
	*len = 0;
	if (u->password[0] && u->user[0])
		append_cmd(buf, len, 3, (const char *[]){"AUTH", u->user, u->password}), n++;
	else if (u->password[0])
		append_cmd(buf, len, 2, (const char *[]){"AUTH", u->password}), n++;
	if (u->db) {
		snprintf(db, sizeof(db), "%d", u->db);
		append_cmd(buf, len, 2, (const char *[]){"SELECT", db}), n++;
	}
	if (u->tls && !n)
		append_cmd(buf, len, 1, (const char *[]){"PING"}), n++;
	return n;
}

int rds_handshake_check(const struct rdsurl *u, int i, const void *reply, char *err, size_t n)
{
	const redisReply *x = reply;
	bool auth = u->password[0] && i == 0;
	if (x->type != REDIS_REPLY_ERROR)
		return 0;
	if (auth)
		snprintf(err, n, "redis authentication failed%s%s: %s", u->user[0] ? " for user " : "",
			 u->user, x->str);
	else
		snprintf(err, n, "redis %s failed: %s", u->db ? "SELECT" : "PING", x->str);
	return -1;
}

/* ---- synchronous ------------------------------------------------------ */

struct rds {
	struct rds_conn c;
	redisReader *reader;
	double timeout;
	bool broken;     /* an I/O error: every later call fails at once */
	char ioerr[300]; /* that error */
	char err[256];   /* the last error reply */
};

/* SHA1 of each embedded script as Redis reported it (per process). */
static char script_sha[LUA_SCRIPT_COUNT][41];

static int rds_broken(struct rds *r, const char *why)
{
	snprintf(r->ioerr, sizeof(r->ioerr), "%s", why);
	r->broken = true;
	return -1;
}

static int rds_send(struct rds *r, const char *buf, size_t len, double deadline)
{
	size_t off = 0;
	while (off < len) {
		int want = 0;
		ssize_t k = rds_conn_write(&r->c, buf + off, len - off, &want);
		if (k < 0)
			rds_conn_explain(&r->c);
		if (k < 0 || (!k && rds_conn_wait(&r->c, want, deadline)))
			return rds_broken(r, r->c.err);
		off += (size_t)(k > 0 ? k : 0);
	}
	return 0;
}

/* The next reply, read with poll() until the deadline; NULL if broken. */
static redisReply *rds_recv(struct rds *r, double deadline)
{
	char buf[RDS_READ_CHUNK];
	void *x = NULL;
	for (;;) {
		int want = 0;
		ssize_t k;
		if (redisReaderGetReply(r->reader, &x) != REDIS_OK) {
			rds_broken(r, r->reader->errstr[0] ? r->reader->errstr : "protocol error");
			return NULL;
		}
		if (x)
			return x;
		/* read first: TLS may hold decrypted bytes poll() cannot see */
		k = rds_conn_read(&r->c, buf, sizeof(buf), &want);
		if (k < 0 || (!k && rds_conn_wait(&r->c, want, deadline))) {
			rds_broken(r, r->c.err);
			return NULL;
		}
		if (k > 0 && redisReaderFeed(r->reader, buf, (size_t)k) != REDIS_OK)
			rds_oom();
	}
}

static int rds_handshake(struct rds *r, const struct rdsurl *u, const char *addr,
			 double deadline, char *err, size_t n)
{
	char *buf;
	size_t len;
	int count = rds_handshake_format(u, &buf, &len), rc = 0;
	if (count && rds_send(r, buf, len, deadline)) {
		snprintf(err, n, "redis at %s dropped the connection: %s", addr, r->ioerr);
		rc = -1;
	}
	for (int i = 0; i < count && !rc; i++) {
		redisReply *x = rds_recv(r, deadline);
		if (!x || rds_handshake_check(u, i, x, err, n))
			rc = -1;
		if (!x)
			snprintf(err, n, "redis at %s dropped the connection: %s", addr, r->ioerr);
		if (x)
			freeReplyObject(x);
	}
	free(buf);
	return rc;
}

int rds_tls_check(const struct rdsurl *u, char *err, size_t n)
{
	return rds_conn_check_tls(u, err, n);
}

struct rds *rds_open(const struct rdsurl *u, double timeout, char *err, size_t n)
{
	/* sentinel hook: ask the sentinels, then rds_open the master they name */
	if (u->nsentinels)
		return sentinel_open(u, timeout, err, n);
	struct rds *r = xcalloc(1, sizeof(*r));
	double deadline = util_now_mono() + timeout;
	char addr[300];
	int want = 0, rc;
	r->timeout = timeout;
	if (!(r->reader = redisReaderCreate()))
		rds_oom();
	rds_conn_describe(u, addr, sizeof(addr));
	rc = rds_conn_start(&r->c, u) ? -1 : 1;
	while (rc == 1 && (rc = rds_conn_progress(&r->c, &want)) == 1)
		if (rds_conn_wait(&r->c, want, deadline))
			rc = -1;
	if (rc) {
		snprintf(err, n, "cannot connect to redis at %s: %s", addr, r->c.err);
		goto out_free;
	}
	if (rds_handshake(r, u, addr, deadline, err, n))
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
	rds_conn_close(&r->c);
	if (r->reader)
		redisReaderFree(r->reader);
	free(r);
}

const char *rds_errstr(const struct rds *r)
{
	return r->broken ? r->ioerr : r->err;
}

/* An error reply is remembered for rds_errstr, as an I/O error is. */
static redisReply *rds_note(struct rds *r, redisReply *x)
{
	if (x && x->type == REDIS_REPLY_ERROR)
		snprintf(r->err, sizeof(r->err), "%s", x->str);
	return x;
}

/* One round trip, bounded by the connection's timeout. */
static redisReply *rds_roundtrip(struct rds *r, int argc, const char **argv, const size_t *lens)
{
	double deadline = util_now_mono() + r->timeout;
	char *cmd = NULL;
	int len;
	if (r->broken)
		return NULL;
	if ((len = redisFormatCommandArgv(&cmd, argc, argv, lens)) < 0)
		rds_oom();
	int rc = rds_send(r, cmd, (size_t)len, deadline);
	redisFreeCommand(cmd);
	return rc ? NULL : rds_recv(r, deadline);
}

struct rds_reply *rds_call(struct rds *r, int argc, const char **argv, const size_t *lens)
{
	return (struct rds_reply *)(void *)rds_note(r, rds_roundtrip(r, argc, argv, lens));
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
	redisReply *x = rds_roundtrip(r, 3, (const char *[]){"SCRIPT", "LOAD", lua_script_source[s]},
				      NULL);
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
		x = rds_roundtrip(r, 3 + argc, av, lv);
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

