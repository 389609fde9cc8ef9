/* http: libmicrohttpd glue. MHD owns the sockets and the HTTP parsing; this
 * file only drives it from libev and keeps the fds a child must close. */
#include "http.h"

#include <arpa/inet.h>
#include <ev.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostport.h"
#include "log.h"
#include "util.h"

struct http {
	struct ev_loop *loop;
	struct MHD_Daemon *d;
	http_handler fn;
	void *priv;
	char *addr;
	ev_io io_w;
	ev_timer timer_w;
	int conn_fds[HTTP_CONN_LIMIT]; /* -1 = free; for http_forget_in_child */
	char last_error[256];
	bool started;
	bool closed; /* a connection closed during this MHD_run */
};

static void http_on_log(void *cls, const char *fmt, va_list ap)
{
	struct http *h = cls;
	vsnprintf(h->last_error, sizeof(h->last_error), fmt, ap);
	h->last_error[strcspn(h->last_error, "\n")] = '\0';
	/* While running these are a client's troubles (limits, resets): debug. */
	if (h->started)
		log_debug("http", LF_STR("message", h->last_error));
}

static void http_on_conn(void *cls, struct MHD_Connection *conn, void **sctx,
                         enum MHD_ConnectionNotificationCode code)
{
	struct http *h = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		for (size_t i = 0; ci && i < ARRAY_SIZE(h->conn_fds); i++)
			if (h->conn_fds[i] < 0) {
				h->conn_fds[i] = ci->connect_fd;
				*sctx = &h->conn_fds[i];
				break;
			}
	} else {
		h->closed = true;
		if (*sctx)
			*(int *)*sctx = -1;
		*sctx = NULL;
	}
}

static enum MHD_Result http_respond(struct MHD_Connection *conn, struct http_reply *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    r->len, r->body ? r->body : (void *)"",
	    r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(r->body);
		return MHD_NO;
	}
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* MHD calls this once the headers are in (and again per body chunk, which
 * GET has none of); we answer at the first call. */
static enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version, const char *upload,
                                       size_t *upload_size, void **req_ctx)
{
	struct http *h = cls;
	struct http_reply r = {404, "text/plain; charset=utf-8", NULL, 0};
	(void)version;
	(void)upload;
	(void)req_ctx;
	if (*upload_size) {
		*upload_size = 0; /* a body we do not want: discarded */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		r.status = MHD_HTTP_METHOD_NOT_ALLOWED;
		r.body = xstrdup("method not allowed\n");
	} else {
		h->fn(h->priv, url, &r);
	}
	if (r.body && !r.len)
		r.len = strlen(r.body);
	return http_respond(conn, &r);
}

/* MHD_run does everything ready now; then the next deadline it needs.
 * At its connection limit MHD takes the listening socket out of its epoll
 * set and puts it back only at the start of a later run, which nothing
 * would wake us for: after a close, one more run. */
static void http_run(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	do {
		h->closed = false;
		MHD_run(h->d);
	} while (h->closed);
	ev_timer_stop(h->loop, &h->timer_w);
	if (MHD_get_timeout(h->d, &ms) == MHD_YES) {
		ev_timer_set(&h->timer_w, (double)ms / 1000.0, 0.0);
		ev_timer_start(h->loop, &h->timer_w);
	}
}

static void http_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	http_run(w->data);
}

static void http_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	http_run(w->data);
}

struct http *http_new(struct ev_loop *loop, const char *addr, http_handler fn, void *priv,
                      char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (hostport_parse(addr, &ss, &sslen, err, errlen))
		return NULL;
	struct http *h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->fn = fn;
	h->priv = priv;
	h->addr = xstrdup(addr);
	for (size_t i = 0; i < ARRAY_SIZE(h->conn_fds); i++)
		h->conn_fds[i] = -1;
	unsigned flags =
	    MHD_USE_ERROR_LOG | MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	/* The port is in the address; MHD uses this one only in its messages. */
	uint16_t port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                               : ((struct sockaddr_in *)&ss)->sin_port);
	h->d = MHD_start_daemon(
	    flags, port, NULL, NULL, http_on_request, h, MHD_OPTION_EXTERNAL_LOGGER, http_on_log, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)HTTP_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT,
	    MHD_OPTION_NOTIFY_CONNECTION, http_on_conn, h, MHD_OPTION_END);
	const union MHD_DaemonInfo *di =
	    h->d ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!di) {
		util_seterr(err, errlen, "cannot listen on %s: %s", addr,
		            h->last_error[0] ? h->last_error : "libmicrohttpd failed");
		http_free(h);
		return NULL;
	}
	h->started = true;
	ev_io_init(&h->io_w, http_on_io, di->epoll_fd, EV_READ);
	h->io_w.data = h;
	ev_io_start(loop, &h->io_w);
	ev_timer_init(&h->timer_w, http_on_timer, 0.0, 0.0);
	h->timer_w.data = h;
	return h;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	if (h->started) {
		ev_io_stop(h->loop, &h->io_w);
		ev_timer_stop(h->loop, &h->timer_w);
	}
	if (h->d)
		MHD_stop_daemon(h->d);
	free(h->addr);
	free(h);
}

void http_forget_in_child(struct http *h)
{
	if (!h)
		return;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
	if (di)
		close(di->listen_fd);
	if ((di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD)))
		close(di->epoll_fd);
	for (size_t i = 0; i < ARRAY_SIZE(h->conn_fds); i++)
		if (h->conn_fds[i] >= 0)
			close(h->conn_fds[i]);
}

const char *http_addr(const struct http *h)
{
	return h->addr;
}
