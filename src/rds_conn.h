/* rds_conn: the byte stream under every Redis connection (internal to the
 * rds module). A non-blocking TCP or unix socket, with TLS over it (OpenSSL)
 * for rediss://. The synchronous side drives it with poll() and a
 * deadline, the asynchronous side from libev watchers; both go through the
 * same steps, so plain TCP, unix sockets and TLS share one code path.
 *
 * Each connection has its own SSL_CTX and SSL: nothing TLS is shared
 * between connections, so a forked worker never touches the master's
 * session (rds_conn_close never sends close_notify). */
#ifndef FORQ_RDS_CONN_H
#define FORQ_RDS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rdsurl.h"

struct ssl_st;
struct ssl_ctx_st;

/* What the connection waits for before the last step can go on. */
enum { RDS_WANT_READ = 1, RDS_WANT_WRITE = 2 };

struct rds_conn {
	int fd; /* -1 when closed */
	struct ssl_ctx_st *ctx;
	struct ssl_st *ssl;
	bool connecting;  /* connect(2) in flight */
	bool handshaking; /* TLS handshake in flight */
	char err[256];    /* last error, never containing a password */
};

/* The (host, port) or unix path this URL connects to, for logs. */
void rds_conn_describe(const struct rdsurl *u, char *out, size_t n);

/* Starts connecting to u (the one place the address is chosen, for the
 * synchronous and the asynchronous side alike). 0, or -1 with c->err;
 * either way c must be closed with rds_conn_close. */
int rds_conn_start(struct rds_conn *c, const struct rdsurl *u);
/* Advances the connect and the TLS handshake: 0 when the stream is ready,
 * 1 when it must be called again once *want is ready, -1 with c->err. */
int rds_conn_progress(struct rds_conn *c, int *want);
/* > 0 bytes moved; 0 when it would block (*want says on what); -1 on an
 * error or end of stream, with c->err. */
ssize_t rds_conn_read(struct rds_conn *c, char *buf, size_t n, int *want);
ssize_t rds_conn_write(struct rds_conn *c, const char *buf, size_t n, int *want);
/* After a failed write: a server that refuses our client certificate
 * (TLS 1.3) sends its alert after the handshake and closes, and a write
 * can fail first with a bare "Broken pipe". When the alert is there to
 * read, c->err becomes what it says. */
void rds_conn_explain(struct rds_conn *c);
/* Blocks until want is ready or the monotonic deadline passes: 0 or -1. */
int rds_conn_wait(struct rds_conn *c, int want, double deadline);
/* Closes the socket and frees the TLS state without a close_notify, so a
 * forked child can drop its copy of a connection its parent keeps. */
void rds_conn_close(struct rds_conn *c);

/* Builds the TLS context for u (CA, client certificate) once, so a bad
 * file is found at start: 0, or -1 with err. No-op without TLS. */
int rds_conn_check_tls(const struct rdsurl *u, char *err, size_t n);

#endif
