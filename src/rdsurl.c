/* rdsurl: Redis URLs into host/port/path/credentials/db, and their redacted
 * form for logs. Error messages never quote the URL, so a password can not
 * leak through them however the URL is mangled. */
#include "rdsurl.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util.h"
#include <strings.h>

#define RDSURL_PORT_DEFAULT 6379
#define RDSURL_DB_MAX 10000
#define RDSURL_SUN_PATH_MAX 107 /* sizeof(sun_path) - 1 on Linux */

static bool has_scheme(const char *url, const char *sep, const char *name)
{
	size_t n = strlen(name);
	return (size_t)(sep - url) == n && !strncasecmp(url, name, n);
}

/* The '@' that ends user[:password] in rest (the text after "://"), or NULL.
 * The last one is taken, so an unescaped '@', '/' or ':' inside a password
 * still ends up in the password; a unix path that starts right after "://"
 * has no credentials, and for unix the '@' must be followed by the path. */
static const char *find_userinfo_end(const char *rest, bool is_unix)
{
	const char *at = NULL;
	if (is_unix && rest[0] == '/')
		return NULL;
	for (const char *p = rest; (p = strchr(p, '@')); p++)
		if (!is_unix || p[1] == '/')
			at = p;
	return at;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into dst (cap bytes with the NUL): 0, or -1. */
static int pct_decode(const char *s, size_t n, char *dst, size_t cap)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
			if (lo < 0 || (hi | lo) == 0) /* bad escape, or %00 */
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (w + 1 >= cap)
			return -1;
		dst[w++] = c;
	}
	dst[w] = '\0';
	return 0;
}

static int parse_userinfo(const char *s, size_t n, struct rdsurl *out, char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', n);
	size_t ulen = colon ? (size_t)(colon - s) : n;
	if (pct_decode(s, ulen, out->user, sizeof(out->user))) {
		util_seterr(err, errlen, "bad user in Redis URL (bad %%-escape or too long)");
		return -1;
	}
	if (colon && pct_decode(colon + 1, n - ulen - 1, out->password, sizeof(out->password))) {
		util_seterr(err, errlen, "bad password in Redis URL (bad %%-escape or too long)");
		return -1;
	}
	return 0;
}

/* A whole decimal number s[0..n) in [min, max]: 0, or -1. */
static int parse_number(const char *s, size_t n, long min, long max, int *out)
{
	long v = 0;
	if (!n || n > 6)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_db(const char *s, size_t n, bool *seen, struct rdsurl *out, char *err,
                    size_t errlen)
{
	if (*seen) {
		util_seterr(err, errlen, "db given twice in Redis URL");
		return -1;
	}
	*seen = true;
	if (parse_number(s, n, 0, RDSURL_DB_MAX, &out->db)) {
		util_seterr(err, errlen, "bad db in Redis URL (a number from 0 to %d)", RDSURL_DB_MAX);
		return -1;
	}
	return 0;
}

/* One query parameter "name=value": db or password. */
static int parse_param(const char *s, size_t n, bool *db_seen, struct rdsurl *out, char *err,
                       size_t errlen)
{
	const char *eq = memchr(s, '=', n);
	size_t klen = eq ? (size_t)(eq - s) : n, vlen = eq ? n - klen - 1 : 0;
	if (!n)
		return 0; /* "?&db=1", trailing '&' */
	if (eq && klen == 2 && !memcmp(s, "db", 2))
		return parse_db(eq + 1, vlen, db_seen, out, err, errlen);
	if (eq && klen == 8 && !memcmp(s, "password", 8)) {
		if (out->password[0]) {
			util_seterr(err, errlen, "password given twice in Redis URL");
			return -1;
		}
		if (pct_decode(eq + 1, vlen, out->password, sizeof(out->password))) {
			util_seterr(err, errlen,
			       "bad password in Redis URL (bad %%-escape or too long)");
			return -1;
		}
		return 0;
	}
	util_seterr(err, errlen, "unknown parameter in Redis URL query (supported: db, password)");
	return -1;
}

static int parse_query(const char *q, bool *db_seen, struct rdsurl *out, char *err, size_t errlen)
{
	while (*q) {
		size_t n = strcspn(q, "&");
		if (parse_param(q, n, db_seen, out, err, errlen))
			return -1;
		q += n + (q[n] == '&');
	}
	return 0;
}

static bool host_is_valid(const char *h, size_t n, bool ipv6)
{
	bool colon = false;
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		colon |= c == ':';
		if (ipv6 ? !(isxdigit(c) || c == ':' || c == '.')
		         : !(isalnum(c) || c == '-' || c == '.' || c == '_'))
			return false;
	}
	return !ipv6 || colon;
}

/* host, [v6], with an optional ":port"; *end is set after them. */
static int parse_host_port(const char *hp, const char **end, struct rdsurl *out, char *err,
                           size_t errlen)
{
	bool ipv6 = hp[0] == '[';
	const char *h = hp + ipv6;
	const char *p = ipv6 ? strchr(h, ']') : h + strcspn(h, ":/?,");
	if (!p) {
		util_seterr(err, errlen, "unclosed '[' in Redis URL host");
		return -1;
	}
	if (p == h) {
		util_seterr(err, errlen, "Redis URL has no host");
		return -1;
	}
	if (!host_is_valid(h, (size_t)(p - h), ipv6) || (size_t)(p - h) >= sizeof(out->host)) {
		util_seterr(err, errlen, "%s in Redis URL", ipv6 ? "bad IPv6 address" : "bad host");
		return -1;
	}
	memcpy(out->host, h, (size_t)(p - h));
	out->host[p - h] = '\0';
	p += ipv6;
	if (*p == ':') {
		size_t n = strcspn(++p, "/?,");
		if (parse_number(p, n, 1, 65535, &out->port)) {
			util_seterr(err, errlen, "bad port in Redis URL (a number from 1 to 65535)");
			return -1;
		}
		p += n;
	}
	*end = p;
	return 0;
}

/* What may follow the address: [/db][?db=N&password=P], nothing else;
 * after names what came before, for the message. */
static int parse_db_query(const char *p, const char *after, struct rdsurl *out, char *err,
			  size_t errlen)
{
	bool db_seen = false;
	if (*p == '/') {
		size_t n = strcspn(++p, "?");
		if (n && parse_db(p, n, &db_seen, out, err, errlen))
			return -1;
		p += n;
	}
	if (*p == '?')
		return parse_query(p + 1, &db_seen, out, err, errlen);
	if (*p) {
		util_seterr(err, errlen, "unexpected text after the %s in Redis URL", after);
		return -1;
	}
	return 0;
}

/* redis://[user[:password]@]host[:port][/db][?db=N&password=P] */
static int parse_tcp(const char *rest, struct rdsurl *out, char *err, size_t errlen)
{
	const char *at = find_userinfo_end(rest, false), *p;
	if (at && parse_userinfo(rest, (size_t)(at - rest), out, err, errlen))
		return -1;
	if (parse_host_port(at ? at + 1 : rest, &p, out, err, errlen))
		return -1;
	return parse_db_query(p, "host", out, err, errlen);
}

/* unix://[user[:password]@]/path[?db=N&password=P] */
static int parse_unix(const char *rest, struct rdsurl *out, char *err, size_t errlen)
{
	const char *at = find_userinfo_end(rest, true);
	const char *path = at ? at + 1 : rest;
	size_t n = strcspn(path, "?");
	bool db_seen = false;
	if (at && parse_userinfo(rest, (size_t)(at - rest), out, err, errlen))
		return -1;
	if (!n) {
		util_seterr(err, errlen, "unix socket path is empty in Redis URL");
		return -1;
	}
	if (path[0] != '/') {
		util_seterr(err, errlen,
		       "unix socket path in Redis URL must be absolute (unix:///path)");
		return -1;
	}
	if (n > RDSURL_SUN_PATH_MAX) {
		util_seterr(err, errlen, "unix socket path in Redis URL is longer than %d bytes",
		       RDSURL_SUN_PATH_MAX);
		return -1;
	}
	memcpy(out->path, path, n);
	out->path[n] = '\0';
	return path[n] == '?' ? parse_query(path + n + 1, &db_seen, out, err, errlen) : 0;
}

/* ---- Sentinel ---- */

static bool master_name_is_valid(const char *s, size_t n)
{
	if (!n || n >= sizeof(((struct rdsurl *)0)->master_name))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-._", s[i]))
			return false;
	return true;
}

/* h1[:port],h2[:port]: the sentinels, each port 26379 by default. */
static int parse_sentinel_list(const char *p, const char **end, struct rdsurl *out, char *err,
			       size_t errlen)
{
	for (;;) {
		if (out->nsentinels == RDSURL_SENTINELS_MAX) {
			util_seterr(err, errlen, "more than %d sentinels in Redis URL",
				    RDSURL_SENTINELS_MAX);
			return -1;
		}
		struct rdsurl_node *node = &out->sentinels[out->nsentinels++];
		out->port = RDSURL_SENTINEL_PORT;
		if (parse_host_port(p, &p, out, err, errlen))
			return -1;
		memcpy(node->host, out->host, sizeof(node->host));
		node->port = out->port;
		if (*p != ',')
			break;
		p++;
	}
	/* the data node is whatever the sentinels name (sentinel.h) */
	out->host[0] = '\0';
	out->port = 0;
	*end = p;
	return 0;
}

/* redis+sentinel://[user[:password]@]h1[:port],h2[:port]/name[/db][?db=N&password=P] */
static int parse_sentinel(const char *rest, struct rdsurl *out, char *err, size_t errlen)
{
	const char *at = find_userinfo_end(rest, false), *p;
	if (at && parse_userinfo(rest, (size_t)(at - rest), out, err, errlen))
		return -1;
	if (parse_sentinel_list(at ? at + 1 : rest, &p, out, err, errlen))
		return -1;
	size_t n = *p == '/' ? strcspn(++p, "/?") : 0;
	if (!master_name_is_valid(p, n)) {
		util_seterr(err, errlen, "Redis Sentinel URL needs a master name of letters, digits, "
				    "'-', '.' or '_' (redis+sentinel://host:26379/mymaster)");
		return -1;
	}
	memcpy(out->master_name, p, n);
	out->master_name[n] = '\0';
	p += n;
	return parse_db_query(p, "master name", out, err, errlen);
}

static int parse_scheme(const char *url, struct rdsurl *out, char *err, size_t errlen)
{
	const char *sep = strstr(url, "://");
	if (!sep) {
		util_seterr(err, errlen, "Redis URL must start with redis://, rediss://, unix:// or "
				    "redis+sentinel://");
		return -1;
	}
	if (has_scheme(url, sep, "redis"))
		return parse_tcp(sep + 3, out, err, errlen);
	if (has_scheme(url, sep, "unix"))
		return parse_unix(sep + 3, out, err, errlen);
	if (has_scheme(url, sep, "redis+sentinel"))
		return parse_sentinel(sep + 3, out, err, errlen);
	if (has_scheme(url, sep, "rediss+sentinel")) {
		out->tls = true;
		return parse_sentinel(sep + 3, out, err, errlen);
	}
	if (has_scheme(url, sep, "rediss")) {
		out->tls = true;
		return parse_tcp(sep + 3, out, err, errlen);
	}
	util_seterr(err, errlen, "unknown Redis URL scheme (use redis://, rediss://, unix:// or "
			    "redis+sentinel://)");
	return -1;
}

int rdsurl_parse(const char *url, struct rdsurl *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->port = RDSURL_PORT_DEFAULT;
	if (!url || !*url) {
		util_seterr(err, errlen, "Redis URL is empty");
		return -1;
	}
	if (parse_scheme(url, out, err, errlen)) {
		memset(out, 0, sizeof(*out)); /* no half-parsed password left behind */
		return -1;
	}
	return 0;
}

static int copy_path(char *dst, size_t cap, const char *v, const char *key, char *err,
		     size_t errlen)
{
	if (!v)
		v = "";
	if (strlen(v) >= cap) {
		util_seterr(err, errlen, "%s is longer than %zu bytes", key, cap - 1);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int rdsurl_set_tls(struct rdsurl *u, const char *ca_file, const char *cert_file,
		   const char *key_file, char *err, size_t errlen)
{
	bool cert = cert_file && *cert_file, key = key_file && *key_file;
	if (cert != key) {
		util_seterr(err, errlen, "tls_cert_file and tls_key_file must be given together");
		return -1;
	}
	if (copy_path(u->tls_ca_file, sizeof(u->tls_ca_file), ca_file, "tls_ca_file", err,
		      errlen) ||
	    copy_path(u->tls_cert_file, sizeof(u->tls_cert_file), cert_file, "tls_cert_file", err,
		      errlen) ||
	    copy_path(u->tls_key_file, sizeof(u->tls_key_file), key_file, "tls_key_file", err,
		      errlen))
		return -1;
	return 0;
}

/* ---- redaction ---- */

struct sink {
	char *p;
	size_t n, w;
};

static void put(struct sink *o, const char *s, size_t len)
{
	while (len-- && o->w + 1 < o->n)
		o->p[o->w++] = *s++;
	o->p[o->w] = '\0';
}

/* Copies s with the value of every "password=" parameter replaced. Once
 * past the first '?' at or after host, parameters end only at '&', as
 * rdsurl_parse reads them: a '?' inside a password is part of it. */
static void put_redacted_query(struct sink *o, const char *s, const char *host)
{
	bool in_query = false;
	while (*s) {
		size_t n = strcspn(s, in_query ? "&" : "?&");
		if (n >= 9 && !memcmp(s, "password=", 9)) {
			put(o, s, 9);
			if (n > 9)
				put(o, "***", 3);
		} else {
			put(o, s, n);
		}
		s += n;
		if (*s == '?' && s >= host)
			in_query = true;
		if (*s)
			put(o, s++, 1);
	}
}

static void redact_text(const char *url, char *out, size_t n)
{
	struct sink o = {out, n, 0};
	const char *sep, *rest, *at;
	if (!out || !n)
		return;
	out[0] = '\0';
	if (!url)
		return;
	sep = strstr(url, "://");
	rest = sep ? sep + 3 : url; /* no scheme: still hide "user:pass@" */
	at = find_userinfo_end(rest, sep && has_scheme(url, sep, "unix"));
	put(&o, url, (size_t)(rest - url));
	/* without a ':' there is no password before the '@'; what looked like
	 * user info may be a query whose password holds an unescaped '@', so it
	 * goes through the query redaction with the rest */
	const char *colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
	const char *host = at ? at + 1 : rest;
	if (colon) {
		put(&o, rest, (size_t)(colon + 1 - rest));
		if (colon + 1 < at)
			put(&o, "***", 3);
		rest = at;
	}
	put_redacted_query(&o, rest, host);
}

/* A URL that parses, rebuilt from its parts with the password starred: the
 * fallback when the text-level redaction changed how the URL reads. */
static void redact_canonical(const struct rdsurl *u, char *out, size_t n)
{
	char user[3 * sizeof(u->user) + 8] = "";
	size_t k = 0;
	/* the user name percent-encoded, so ':', '@', '/' or '?' in it read back */
	for (const unsigned char *c = (const unsigned char *)u->user; *c; c++)
		k += (size_t)snprintf(user + k, sizeof(user) - k,
				      isalnum(*c) || strchr("-._~", *c) ? "%c" : "%%%02X", *c);
	if (u->user[0] || u->password[0])
		snprintf(user + k, sizeof(user) - k, "%s@", u->password[0] ? ":***" : "");
	if (u->nsentinels) {
		struct sink o = {out, n, 0};
		put(&o, u->tls ? "rediss+sentinel://" : "redis+sentinel://", u->tls ? 18 : 17);
		put(&o, user, strlen(user));
		for (int i = 0; i < u->nsentinels; i++) {
			char node[300];
			const struct rdsurl_node *s = &u->sentinels[i];
			snprintf(node, sizeof(node), strchr(s->host, ':') ? "%s[%s]:%d" : "%s%s:%d",
				 i ? "," : "", s->host, s->port);
			put(&o, node, strlen(node));
		}
		snprintf(user, sizeof(user), "/%s/%d", u->master_name, u->db);
		put(&o, user, strlen(user));
	} else if (u->path[0])
		snprintf(out, n, "unix://%s?db=%d%s", u->path, u->db,
			 u->password[0] ? "&password=***" : "");
	else if (strchr(u->host, ':'))
		snprintf(out, n, "%s://%s[%s]:%d/%d", u->tls ? "rediss" : "redis", user, u->host,
			 u->port, u->db);
	else
		snprintf(out, n, "%s://%s%s:%d/%d", u->tls ? "rediss" : "redis", user, u->host,
			 u->port, u->db);
}

/* Text-level redaction keeps the URL as written; when the result would no
 * longer read as the same URL with its password starred (pathological
 * inputs found by fuzzing, such as a '?password=' inside the user info),
 * the URL is rebuilt from its parsed parts instead, so nothing of a
 * password can show either way. */
void rdsurl_redact(const char *url, char *out, size_t n)
{
	struct rdsurl u, v;
	char err[64], full[2048];
	if (!out || !n)
		return;
	redact_text(url, full, sizeof(full));
	if (url && !rdsurl_parse(url, &u, err, sizeof(err)) && u.password[0] &&
	    (rdsurl_parse(full, &v, err, sizeof(err)) || strcmp(v.password, "***") ||
	     strcmp(v.host, u.host) || strcmp(v.path, u.path) || v.port != u.port ||
	     v.nsentinels != u.nsentinels || strcmp(v.master_name, u.master_name))) {
		redact_canonical(&u, full, sizeof(full));
		memset(&u, 0, sizeof(u));
	}
	snprintf(out, n, "%s", full);
}
