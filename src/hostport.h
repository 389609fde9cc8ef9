/* hostport: the address an HTTP listener binds, from "127.0.0.1:9292" or
 * "[::1]:9292". Numeric only: a name would need a resolver call, and the
 * master must not block on one. Pure. */
#ifndef FORQ_HOSTPORT_H
#define FORQ_HOSTPORT_H

#include <stddef.h>
#include <sys/socket.h>

/* Fills *ss and *len; 0, or -1 with a message in err. */
int hostport_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
                   size_t errlen);

#endif
