/* http: a small HTTP/1.1 server on the master's libev loop, built on
 * libmicrohttpd in external-polling epoll mode: one ev_io on its epoll fd
 * and one ev_timer from MHD_get_timeout, MHD_run on either. Handlers run in
 * the loop and must not block: they answer from memory. Slow or idle
 * clients cost a connection slot until HTTP_CONN_TIMEOUT, never the loop.
 * Only GET and HEAD are served (405 otherwise). */
#ifndef FORQ_HTTP_H
#define FORQ_HTTP_H

#include <stddef.h>

#define HTTP_CONN_LIMIT 100  /* connections at once; more wait in the backlog */
#define HTTP_CONN_TIMEOUT 10 /* seconds a connection may stay idle */

struct ev_loop;
struct http;

/* What a handler answers: body is malloc'd and handed over (may be NULL). */
struct http_reply {
	int status;
	const char *content_type; /* static */
	char *body;
	size_t len;
};

typedef void (*http_handler)(void *priv, const char *path, struct http_reply *out);

/* Listens on addr ("127.0.0.1:9292", "[::1]:9292"). NULL with err. */
struct http *http_new(struct ev_loop *loop, const char *addr, http_handler fn, void *priv,
                      char *err, size_t errlen);
/* Closes the listener and every connection. NULL is fine. */
void http_free(struct http *h);
/* In a forked child: closes this process's copies of the listening socket,
 * the epoll fd and the connections, leaving the parent's untouched. */
void http_forget_in_child(struct http *h);
const char *http_addr(const struct http *h);

#endif
