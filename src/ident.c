/* ident: getrandom(2) for nonces and jids; hostnames made safe for the
 * three-part identity that Sidekiq tools parse. */
#include "ident.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "util.h"

void ident_random_hex(char *out, size_t nbytes)
{
	uint8_t buf[64];
	size_t got = 0;
	if (nbytes > sizeof(buf))
		nbytes = sizeof(buf);
	while (got < nbytes) {
		ssize_t r = getrandom(buf + got, nbytes - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	for (; got < nbytes; got++) /* getrandom cannot fail here; be safe anyway */
		buf[got] = (uint8_t)(util_random() * 256);
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", buf[i]);
	out[2 * nbytes] = '\0';
}

void ident_hostname(char *out, size_t n)
{
	const char *dyno = getenv("DYNO");
	if (dyno && *dyno)
		snprintf(out, n, "%s", dyno);
	else if (gethostname(out, n) || !out[0])
		snprintf(out, n, "localhost");
	out[n - 1] = '\0';
	for (char *p = out; *p; p++)
		if (*p == ':')
			*p = '-';
}

void ident_node(char *out, size_t n)
{
	char host[256], nonce[13];
	ident_hostname(host, sizeof(host));
	ident_random_hex(nonce, 6);
	snprintf(out, n, "%s:%ld:%s", host, (long)getpid(), nonce);
}
