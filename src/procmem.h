/* procmem: a process's memory as /proc tells it, for the master's heartbeat,
 * its recycling of workers and its /metrics. */
#ifndef FORQ_PROCMEM_H
#define FORQ_PROCMEM_H

#include <sys/types.h>

/* Resident set in KiB (statm: counters the kernel keeps, about 5 us to
 * read), or -1 when the process is gone or /proc says nothing. */
long procmem_rss_kb(pid_t pid);
/* Proportional set size in KiB (smaps_rollup), or -1. It walks the page
 * tables: about 5 ms for 300 MiB resident, so read it sparingly. */
long procmem_pss_kb(pid_t pid);

#endif
