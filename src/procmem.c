/* procmem: reads /proc/<pid>/statm and smaps_rollup with one small read. */
#include "procmem.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One small read of a /proc file; the buffer is NUL-terminated. */
static ssize_t procmem_read(pid_t pid, const char *what, char *buf, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, what);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t got = read(fd, buf, n - 1);
	close(fd);
	if (got >= 0)
		buf[got] = '\0';
	return got;
}

long procmem_rss_kb(pid_t pid)
{
	char buf[256];
	long pages;
	if (procmem_read(pid, "statm", buf, sizeof(buf)) <= 0 || sscanf(buf, "%*d %ld", &pages) != 1)
		return -1;
	return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

long procmem_pss_kb(pid_t pid)
{
	char buf[1024];
	if (procmem_read(pid, "smaps_rollup", buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, "\nPss:");
	return p ? strtol(p + 5, NULL, 10) : -1;
}
