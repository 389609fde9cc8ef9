/* proctitle: argv[0] through the end of the contiguous argv+environ block is
 * ours to overwrite once environ has been copied elsewhere. Also sets the
 * kernel's 15-character comm name so top and pgrep see the role. */
#include "proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "util.h"

extern char **environ;

static char *title_start;
/* Our copy of the environment; kept here so it stays reachable after setenv
 * replaces environ (leak checkers would otherwise flag it). */
static char **env_copy;
static char *env_block;
static size_t title_len;

void proctitle_init(int argc, char **argv)
{
	char *end = argv[0] + strlen(argv[0]) + 1;
	size_t n;

	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	for (n = 0; environ[n]; n++)
		if (environ[n] == end)
			end = environ[n] + strlen(environ[n]) + 1;
	/* The copies live for the whole process in one block that we keep a
	 * pointer to, so setenv replacing an entry cannot orphan (leak) it. */
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += strlen(environ[i]) + 1;
	env_block = xmalloc(total);
	env_copy = xcalloc(n + 1, sizeof(*env_copy));
	char *p = env_block;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(environ[i]) + 1;
		memcpy(p, environ[i], len);
		env_copy[i] = p;
		p += len;
	}
	environ = env_copy;
	for (int i = 1; i < argc; i++)
		argv[i] = xstrdup(argv[i]);
	title_start = argv[0];
	title_len = (size_t)(end - argv[0]);
	argv[0] = xstrdup(argv[0]);
}

void proctitle_set(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	prctl(PR_SET_NAME, buf[0] == 'f' && !strncmp(buf, "forq: ", 6) ? buf + 6 : buf, 0, 0, 0);
	if (!title_start || title_len < 2)
		return;
	size_t n = strlen(buf);
	if (n > title_len - 1)
		n = title_len - 1;
	memcpy(title_start, buf, n);
	memset(title_start + n, '\0', title_len - n);
}
