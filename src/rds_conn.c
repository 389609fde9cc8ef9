/* rds_conn: sockets and TLS for the rds module. Non-blocking from the
 * start; the TLS layer is OpenSSL with certificate and host name
 * verification, SNI and an optional client certificate. */
#include "rds_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define RDS_KEEPALIVE_IDLE 15 /* seconds, as hiredis's redisEnableKeepAlive */

void rds_conn_describe(const struct rdsurl *u, char *out, size_t n)
{
	if (u->path[0])
		snprintf(out, n, "unix:%s", u->path);
	else if (strchr(u->host, ':'))
		snprintf(out, n, "[%s]:%d%s", u->host, u->port, u->tls ? " (tls)" : "");
	else
		snprintf(out, n, "%s:%d%s", u->host, u->port, u->tls ? " (tls)" : "");
}

/* The oldest OpenSSL error of this thread as text (the queue is cleared),
 * or fallback. */
static void tls_error(char *out, size_t n, const char *what, const char *fallback)
{
	char buf[200];
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(out, n, "%s: %s", what, e ? buf : fallback);
	ERR_clear_error();
}

static SSL_CTX *tls_context(const struct rdsurl *u, char *err, size_t n)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		tls_error(err, n, "cannot create a TLS context", "out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* A write interrupted by WANT_* is retried from our buffer, which may
	 * have moved or grown meanwhile. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	char what[600];
	if (u->tls_ca_file[0] ? !SSL_CTX_load_verify_locations(ctx, u->tls_ca_file, NULL)
	                      : !SSL_CTX_set_default_verify_paths(ctx)) {
		snprintf(what, sizeof(what), "cannot load %s%s",
		         u->tls_ca_file[0] ? "tls_ca_file " : "the system CA store",
		         u->tls_ca_file);
		tls_error(err, n, what, "unknown error");
		goto out_free;
	}
	if (u->tls_cert_file[0] && SSL_CTX_use_certificate_chain_file(ctx, u->tls_cert_file) != 1) {
		snprintf(what, sizeof(what), "cannot load tls_cert_file %s", u->tls_cert_file);
		tls_error(err, n, what, "unknown error");
		goto out_free;
	}
	if (u->tls_cert_file[0] &&
	    (SSL_CTX_use_PrivateKey_file(ctx, u->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1)) {
		snprintf(what, sizeof(what), "cannot use tls_key_file %s", u->tls_key_file);
		tls_error(err, n, what, "unknown error");
		goto out_free;
	}
	return ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

int rds_conn_check_tls(const struct rdsurl *u, char *err, size_t n)
{
	SSL_CTX *ctx;
	if (!u->tls)
		return 0;
	if (!(ctx = tls_context(u, err, n)))
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

/* SNI and the name the certificate must carry: an IP address is checked
 * against the certificate's IP entries and is never sent as SNI. */
static int tls_start(struct rds_conn *c, const struct rdsurl *u)
{
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, u->host, ip) == 1 || inet_pton(AF_INET6, u->host, ip) == 1;
	if (!(c->ctx = tls_context(u, c->err, sizeof(c->err))))
		return -1;
	if (!(c->ssl = SSL_new(c->ctx)) || !SSL_set_fd(c->ssl, c->fd)) {
		tls_error(c->err, sizeof(c->err), "cannot start TLS", "out of memory");
		return -1;
	}
	if (is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), u->host)
	          : !SSL_set1_host(c->ssl, u->host) || !SSL_set_tlsext_host_name(c->ssl, u->host)) {
		tls_error(c->err, sizeof(c->err), "cannot set the TLS host name", "bad host");
		return -1;
	}
	SSL_set_connect_state(c->ssl);
	c->handshaking = true;
	return 0;
}

static void tcp_tune(int fd)
{
	int on = 1, idle = RDS_KEEPALIVE_IDLE, cnt = 3;
	/* Commands are small and each waits for its reply: no Nagle delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* A non-blocking socket with connect(2) started: 0, or -1 with errno. */
static int sock_connect(struct rds_conn *c, int family, const struct sockaddr *sa, socklen_t len)
{
	c->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (family != AF_UNIX)
		tcp_tune(c->fd);
	if (connect(c->fd, sa, len) == 0)
		return 0;
	if (errno == EINPROGRESS) {
		c->connecting = true;
		return 0;
	}
	int e = errno;
	close(c->fd);
	c->fd = -1;
	errno = e;
	return -1;
}

static int start_unix(struct rds_conn *c, const struct rdsurl *u)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	util_strlcpy(sa.sun_path, u->path, sizeof(sa.sun_path));
	if (sock_connect(c, AF_UNIX, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
		return -1;
	}
	return 0;
}

/* As hiredis does: the first address whose connect starts is used. */
static int start_tcp(struct rds_conn *c, const struct rdsurl *u)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	char port[8];
	int rc, e = 0;
	snprintf(port, sizeof(port), "%d", u->port);
	if ((rc = getaddrinfo(u->host, port, &hints, &res))) {
		snprintf(c->err, sizeof(c->err), "cannot resolve the host: %s", gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		if (!sock_connect(c, a->ai_family, a->ai_addr, a->ai_addrlen))
			break;
		e = errno;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		snprintf(c->err, sizeof(c->err), "%s", strerror(e));
		return -1;
	}
	return u->tls ? tls_start(c, u) : 0;
}

int rds_conn_start(struct rds_conn *c, const struct rdsurl *u)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	return u->path[0] ? start_unix(c, u) : start_tcp(c, u);
}

static int finish_connect(struct rds_conn *c, int *want)
{
	int e = 0;
	socklen_t len = sizeof(e);
	struct pollfd p = {.fd = c->fd, .events = POLLOUT};
	if (poll(&p, 1, 0) == 0) {
		*want = RDS_WANT_WRITE;
		return 1;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) || e) {
		snprintf(c->err, sizeof(c->err), "%s", strerror(e ? e : errno));
		return -1;
	}
	c->connecting = false;
	return 0;
}

/* Why the handshake failed, naming the verification failure when that is
 * what it was. */
static void handshake_error(struct rds_conn *c, int rc)
{
	long v = SSL_get_verify_result(c->ssl);
	int e = SSL_get_error(c->ssl, rc);
	if (v != X509_V_OK) {
		snprintf(c->err, sizeof(c->err),
		         "TLS handshake failed: server certificate verification failed: %s",
		         X509_verify_cert_error_string(v));
		ERR_clear_error();
	} else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error()) {
		snprintf(c->err, sizeof(c->err), "TLS handshake failed: %s",
		         rc == 0 || !errno ? "connection closed by the server" : strerror(errno));
	} else {
		tls_error(c->err, sizeof(c->err), "TLS handshake failed", "unknown error");
	}
}

static int want_of(int e)
{
	return e == SSL_ERROR_WANT_READ ? RDS_WANT_READ : RDS_WANT_WRITE;
}

int rds_conn_progress(struct rds_conn *c, int *want)
{
	int rc, e;
	if (c->connecting) {
		if ((rc = finish_connect(c, want)))
			return rc;
	}
	if (!c->handshaking)
		return 0;
	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_do_handshake(c->ssl)) == 1) {
		c->handshaking = false;
		return 0;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = want_of(e);
		return 1;
	}
	handshake_error(c, rc);
	return -1;
}

/* After an SSL_read/SSL_write that returned rc <= 0. */
static ssize_t tls_failed(struct rds_conn *c, int rc, int *want)
{
	int e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = want_of(e);
		return 0;
	}
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !ERR_peek_error() && !errno))
		snprintf(c->err, sizeof(c->err), "connection closed by the server");
	else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
		snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
	else
		tls_error(c->err, sizeof(c->err), "TLS error", "unknown error");
	return -1;
}

ssize_t rds_conn_read(struct rds_conn *c, char *buf, size_t n, int *want)
{
	ssize_t k;
	if (c->ssl) {
		int rc;
		ERR_clear_error();
		errno = 0;
		rc = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
		return rc > 0 ? rc : tls_failed(c, rc, want);
	}
	k = read(c->fd, buf, n);
	if (k > 0)
		return k;
	if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		*want = RDS_WANT_READ;
		return 0;
	}
	snprintf(c->err, sizeof(c->err), "%s",
	         k ? strerror(errno) : "connection closed by the server");
	return -1;
}

ssize_t rds_conn_write(struct rds_conn *c, const char *buf, size_t n, int *want)
{
	ssize_t k;
	if (c->ssl) {
		int rc;
		ERR_clear_error();
		errno = 0;
		rc = SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
		return rc > 0 ? rc : tls_failed(c, rc, want);
	}
	k = send(c->fd, buf, n, MSG_NOSIGNAL);
	if (k >= 0)
		return k;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		*want = RDS_WANT_WRITE;
		return 0;
	}
	snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
	return -1;
}

void rds_conn_explain(struct rds_conn *c)
{
	char keep[sizeof(c->err)], buf[64];
	int want = 0;
	if (!c->ssl)
		return;
	memcpy(keep, c->err, sizeof(keep));
	if (rds_conn_read(c, buf, sizeof(buf), &want) >= 0 || !strstr(c->err, "alert"))
		memcpy(c->err, keep, sizeof(keep));
}

int rds_conn_wait(struct rds_conn *c, int want, double deadline)
{
	struct pollfd p = {.fd = c->fd,
	                   .events = (short)((want & RDS_WANT_READ ? POLLIN : 0) |
	                                     (want & RDS_WANT_WRITE ? POLLOUT : 0))};
	for (;;) {
		double left = deadline - util_now_mono();
		int rc;
		if (left <= 0) {
			snprintf(c->err, sizeof(c->err), "timed out");
			return -1;
		}
		rc = poll(&p, 1, (int)(left * 1000) + 1);
		if (rc > 0)
			return 0; /* errors and hang-ups show in the next read or write */
		if (rc < 0 && errno != EINTR) {
			snprintf(c->err, sizeof(c->err), "poll: %s", strerror(errno));
			return -1;
		}
	}
}

void rds_conn_close(struct rds_conn *c)
{
	/* SSL_free sends nothing; SSL_set_fd's BIO does not own the fd. */
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->ctx = NULL;
	c->fd = -1;
	c->connecting = c->handshaking = false;
}
