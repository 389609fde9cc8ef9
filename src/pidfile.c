/* pidfile: written atomically through a temporary file and rename(2), so a
 * reader never sees a half-written pid. */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int pidfile_write(const char *path, pid_t pid)
{
	char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
	char line[32];
	int fd, n, saved;

	n = snprintf(line, sizeof(line), "%ld\n", (long)pid);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		goto out_free;
	if (write(fd, line, (size_t)n) != n || close(fd))
		goto out_unlink;
	if (rename(tmp, path))
		goto out_unlink;
	free(tmp);
	return 0;
out_unlink:
	saved = errno;
	unlink(tmp);
	errno = saved;
out_free:
	saved = errno;
	free(tmp);
	errno = saved;
	return -1;
}

void pidfile_remove(const char *path, pid_t pid)
{
	char buf[32] = "";
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f) && atol(buf) == (long)pid)
		unlink(path);
	fclose(f);
}
