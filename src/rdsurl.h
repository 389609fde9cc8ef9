/* rdsurl: parses Redis URLs (pure). redis://[user[:password]@]host[:port][/db]
 * (also "redis://:password@host"), IPv6 hosts in brackets,
 * unix:///path/to/socket[?db=N][&password=...], and Sentinel:
 * redis+sentinel://[user[:password]@]h1[:26379],h2[:26379]/master[/db]
 * (rediss+sentinel:// for TLS), whose credentials are the data node's;
 * rediss:// is the same as redis:// with TLS on (rds_conn.c does TLS
 * with OpenSSL). */
#ifndef FORQ_RDSURL_H
#define FORQ_RDSURL_H

#include <stdbool.h>
#include <stddef.h>

#define RDSURL_SENTINEL_PORT 26379
#define RDSURL_SENTINELS_MAX 16

struct rdsurl_node {
	char host[256];
	int port;
};

struct rdsurl {
	char host[256];   /* empty for unix sockets */
	int port;         /* 6379 by default */
	char path[256];   /* unix socket path, empty for TCP */
	char user[128];   /* ACL user, may be empty */
	char password[256];
	int db;           /* 0 by default */
	/* TLS: tls comes from the scheme (rediss://); the files from the
	 * tls_* keys of forq.ini through rdsurl_set_tls. An empty CA file
	 * means the system store; no cert file means no client certificate. */
	bool tls;
	char tls_ca_file[512];
	char tls_cert_file[512];
	char tls_key_file[512];
	/* ---- Sentinel (redis+sentinel://, rediss+sentinel://) ---- */
	int nsentinels;   /* 0 for a plain URL; else host/port are unset and the
			   * data node is asked of these (sentinel.h) */
	struct rdsurl_node sentinels[RDSURL_SENTINELS_MAX];
	char master_name[128];
	char sentinel_password[256]; /* from the config (sentinel_password), not the URL */
};

/* 0, or -1 with a message in err (never containing the password). */
int rdsurl_parse(const char *url, struct rdsurl *out, char *err, size_t errlen);

/* Adds the TLS files (each may be NULL or ""): 0, or -1 with err when a
 * path is too long or a certificate comes without its key or back. */
int rdsurl_set_tls(struct rdsurl *u, const char *ca_file, const char *cert_file,
		   const char *key_file, char *err, size_t errlen);

/* The URL with any password replaced by "***", for logs and titles. */
void rdsurl_redact(const char *url, char *out, size_t n);

#endif
