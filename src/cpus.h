/* cpus: how many CPUs this process may really use, for "--processes auto":
 * the scheduler affinity mask, capped by a cgroup CPU quota (v2 cpu.max or
 * v1 cfs quota), never the host's core count. */
#ifndef FORQ_CPUS_H
#define FORQ_CPUS_H

/* Parses cgroup v2 "cpu.max" text ("max 100000" or "150000 100000").
 * Returns the quota in CPUs rounded up (>= 1), 0 for no quota, -1 if bad. */
int cpus_parse_cpu_max(const char *text);

/* Usable CPUs, at least 1. Reads /proc and /sys. */
int cpus_usable(void);

#endif
