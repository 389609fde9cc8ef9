/* hostport: IPv4 "a.b.c.d:port" or IPv6 "[addr]:port", port 1-65535. */
#include "hostport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "util.h"

int hostport_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
                   size_t errlen)
{
	char host[64];
	const char *colon;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			goto out_bad;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			goto out_bad;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	}
	if (util_parse_long(colon + 1, 1, 65535, &port))
		goto out_bad;
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof(*v4);
		return 0;
	}
	if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*v6);
		return 0;
	}
out_bad:
	util_seterr(err, errlen,
	            "'%s' is not ADDRESS:PORT with a numeric IPv4 address or [IPv6] and a port "
	            "from 1 to 65535",
	            s);
	return -1;
}
