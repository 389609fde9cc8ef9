/* cpus: affinity and cgroup quota, so "auto" on a 64-core host with a
 * 2-CPU container limit starts 2 workers, not 64. */
#include "cpus.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "util.h"

#define CPUS_MAX 65536

int cpus_parse_cpu_max(const char *text)
{
	char quota[32], rest[8];
	long long period;
	long q;
	/* "%7s" after the period catches trailing junk; whitespace is fine. */
	if (sscanf(text, "%31s %lld %7s", quota, &period, rest) != 2 || period <= 0)
		return -1;
	if (!strcmp(quota, "max"))
		return 0;
	if (util_parse_long(quota, 1, LONG_MAX, &q))
		return -1;
	/* Divide first: quota + period could overflow. */
	long long cpus = q / period + (q % period != 0);
	if (cpus > CPUS_MAX)
		cpus = CPUS_MAX;
	return cpus < 1 ? 1 : (int)cpus;
}

static int read_small(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t got = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[got] = '\0';
	return got ? 0 : -1;
}

/* The cgroup v2 path of this process ("0::/some/path"), or "" when unknown. */
static void own_cgroup_v2(char *out, size_t n)
{
	char buf[4096];
	out[0] = '\0';
	if (read_small("/proc/self/cgroup", buf, sizeof(buf)))
		return;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (!strncmp(line, "0::", 3)) {
			snprintf(out, n, "%s", line + 3);
			return;
		}
}

static int quota_cpus(void)
{
	char cg[1024], path[1200], buf[128];
	own_cgroup_v2(cg, sizeof(cg));
	/* Walk from our cgroup up to the root: a limit anywhere above applies. */
	while (cg[0]) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", cg);
		if (!read_small(path, buf, sizeof(buf))) {
			int q = cpus_parse_cpu_max(buf);
			if (q > 0)
				return q;
		}
		char *slash = strrchr(cg, '/');
		if (!slash || slash == cg)
			break;
		*slash = '\0';
	}
	if (!read_small("/sys/fs/cgroup/cpu.max", buf, sizeof(buf))) {
		int q = cpus_parse_cpu_max(buf);
		if (q > 0)
			return q;
	}
	/* cgroup v1 */
	char qb[64], pb[64];
	if (!read_small("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", qb, sizeof(qb)) &&
	    !read_small("/sys/fs/cgroup/cpu/cpu.cfs_period_us", pb, sizeof(pb))) {
		long long q = atoll(qb), p = atoll(pb);
		if (q > 0 && p > 0)
			return (int)(q / p + (q % p != 0) > CPUS_MAX ? CPUS_MAX : q / p + (q % p != 0));
	}
	return 0;
}

int cpus_usable(void)
{
	cpu_set_t set;
	int n = 0;
	if (!sched_getaffinity(0, sizeof(set), &set))
		n = CPU_COUNT(&set);
	if (n < 1)
		n = 1;
	int q = quota_cpus();
	if (q > 0 && q < n)
		n = q;
	return n;
}
