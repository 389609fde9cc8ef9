/* rds: every conversation with Redis, and the only module that includes
 * hiredis (for its command formatter and I/O-free reply parser; the
 * sockets and TLS are rds_conn.c's, with OpenSSL). Synchronous connections for workers and client commands (their
 * blocking calls have timeouts), asynchronous ones on libev for the master
 * (which must never block). Lua scripts (src/lua/, embedded at build time)
 * run by SHA with a NOSCRIPT fallback on the synchronous side and by source
 * on the asynchronous side, where calls are rare.
 *
 * Ownership: a reply from a synchronous call belongs to the caller
 * (rds_free); a reply handed to an asynchronous callback lives only during
 * that callback. Every asynchronous callback runs exactly once, with NULL
 * when the command could not be completed (disconnect, not connected). */
#ifndef FORQ_RDS_H
#define FORQ_RDS_H

#include <stdbool.h>
#include <stddef.h>

#include "lua_scripts.h"
#include "rdsurl.h"

struct ev_loop;
struct rds;
struct rds_async;
struct rds_reply;

enum rds_type { RDS_NIL, RDS_INT, RDS_STR, RDS_ARR, RDS_ERR, RDS_STATUS };

/* ---- replies ---- */
enum rds_type rds_type(const struct rds_reply *x);
long long rds_int(const struct rds_reply *x);
/* String, status or error text; len may be NULL. "" for other types. */
const char *rds_str(const struct rds_reply *x, size_t *len);
size_t rds_len(const struct rds_reply *x);
struct rds_reply *rds_elem(const struct rds_reply *x, size_t i);
void rds_free(struct rds_reply *x);

/* ---- synchronous ---- */

/* For rediss://: loads the CA and client certificate files once, so a bad
 * file is a configuration error at start. 0, or -1 with err. */
int rds_tls_check(const struct rdsurl *u, char *err, size_t errlen);

/* Connects, authenticates and selects the database. timeout bounds the
 * connect and every later call. NULL with err set. */
struct rds *rds_open(const struct rdsurl *u, double timeout, char *err, size_t errlen);
void rds_close(struct rds *r);
/* Last I/O error, or else the last error reply, for logs. */
const char *rds_errstr(const struct rds *r);

/* One command. NULL means the connection is broken: close and reopen it.
 * A Redis error comes back as an RDS_ERR reply, not NULL. lens gives each
 * argument's length; NULL means strlen of each, so a job payload (bytes,
 * where a NUL is data) must always come with its length. */
struct rds_reply *rds_call(struct rds *r, int argc, const char **argv, const size_t *lens);
/* Convenience for fixed commands: NULL-terminated list of C strings. */
struct rds_reply *rds_callv(struct rds *r, const char *arg0, ...);
/* EVALSHA of an embedded script; loads it on NOSCRIPT and retries once.
 * argv holds the keys first (nkeys of them), then the arguments. */
struct rds_reply *rds_eval(struct rds *r, enum lua_script s, int nkeys, int argc,
			   const char **argv, const size_t *lens);

/* ---- asynchronous (master) ---- */

typedef void (*rds_cb)(struct rds_reply *reply, void *priv);
/* For commands whose reply nobody needs. */
void rds_ignore_reply(struct rds_reply *reply, void *priv);
typedef void (*rds_state_cb)(bool up, void *priv);

/* Starts connecting at once and keeps reconnecting with capped exponential
 * backoff (0.1 s doubling to 10 s), logging each change of state once.
 * on_state runs after each successful connect (true) and each loss (false). */
struct rds_async *rds_async_new(struct ev_loop *loop, const struct rdsurl *u,
				const char *what, rds_state_cb on_state, void *priv);
/* In a forked child: closes this process's copy of the socket without
 * touching the connection the parent keeps using. */
void rds_async_forget(struct rds_async *a);
/* Closes the connection; pending callbacks run with NULL. */
void rds_async_free(struct rds_async *a);
bool rds_async_is_up(const struct rds_async *a);
/* -1 when not connected (cb is not called then). */
int rds_async_call(struct rds_async *a, rds_cb cb, void *priv, int argc, const char **argv,
		   const size_t *lens);
int rds_async_eval(struct rds_async *a, rds_cb cb, void *priv, enum lua_script s, int nkeys,
		   int argc, const char **argv, const size_t *lens);

#endif
