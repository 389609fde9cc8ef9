/* libFuzzer harness for rdsurl: rdsurl_parse on arbitrary text and
 * rdsurl_redact into buffers of every small size. A URL that parses with a
 * password must redact to one whose password, parsed again, is "***": any
 * other value is (part of) the secret showing in a log or process title. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdsurl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *in, const char *out)
{
	fprintf(stderr, "fuzz_url: %s\n  input:    %s\n  redacted: %s\n", what, in, out ? out : "");
	abort();
}

/* Redaction only ever turns a password into "***", so 3 * size + 16 bytes
 * hold the whole result. */
static char *redact(const char *url, size_t size)
{
	size_t n = 3 * size + 16;
	char *out = malloc(n);
	if (!out)
		abort();
	rdsurl_redact(url, out, n);
	if (strlen(out) >= n - 1)
		fail("redacted URL filled the buffer", url, out);
	return out;
}

static void check_redacted(const char *url, const struct rdsurl *u, const char *red)
{
	struct rdsurl v;
	char err[256];
	if (!u->password[0])
		return;
	/* a longer unix path after redaction may not parse; it also holds no
	 * password then */
	if (rdsurl_parse(red, &v, err, sizeof(err)))
		return;
	if (strcmp(v.password, "***"))
		fail("password not fully redacted", url, red);
	if (v.tls != u->tls)
		fail("redaction changed whether TLS is used", url, red);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = malloc(size + 1), err[256], small[16];
	struct rdsurl u;
	if (!url)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';

	int rc = rdsurl_parse(url, &u, err, sizeof(err));
	if (rc && (u.password[0] || u.user[0] || u.host[0]))
		fail("failed parse left fields behind", url, NULL);
	/* Exactly one way to reach the data node: a host, a socket path, or
	 * sentinels that name it (then neither host nor path is set). */
	if (!rc && (!!u.host[0] + !!u.path[0] + (u.nsentinels > 0)) != 1)
		fail("parsed URL has not exactly one of host, path and sentinels", url, NULL);
	if (!rc && u.nsentinels > 0 && !u.master_name[0])
		fail("sentinel URL without a master name", url, NULL);

	char *red = redact(url, size);
	if (!rc)
		check_redacted(url, &u, red);
	/* a truncated redaction is a prefix of the whole one */
	size_t n = size % sizeof(small) + 1;
	rdsurl_redact(url, small, n);
	if (strncmp(small, red, strlen(small)) || strlen(small) >= n)
		fail("truncated redaction differs", url, small);
	free(red);
	free(url);
	return 0;
}
