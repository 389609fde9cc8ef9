/* rdsurl: parses Redis URLs (pure). redis://[user[:password]@]host[:port][/db]
 * (also "redis://:password@host"), IPv6 hosts in brackets, and
 * unix:///path/to/socket[?db=N][&password=...]; rediss:// is refused because
 * Debian's hiredis is built without TLS. */
#ifndef FORQ_RDSURL_H
#define FORQ_RDSURL_H

#include <stddef.h>

struct rdsurl {
	char host[256];   /* empty for unix sockets */
	int port;         /* 6379 by default */
	char path[256];   /* unix socket path, empty for TCP */
	char user[128];   /* ACL user, may be empty */
	char password[256];
	int db;           /* 0 by default */
};

/* 0, or -1 with a message in err (never containing the password). */
int rdsurl_parse(const char *url, struct rdsurl *out, char *err, size_t errlen);

/* The URL with any password replaced by "***", for logs and titles. */
void rdsurl_redact(const char *url, char *out, size_t n);

#endif
