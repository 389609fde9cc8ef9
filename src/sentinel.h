/* sentinel: finds the data node of a redis+sentinel:// URL. The sentinels
 * are asked in the URL's order (SENTINEL get-master-addr-by-name), an
 * unreachable or ignorant one is skipped, and the node they name must say
 * it is the master (ROLE) before it is used. rds.c calls in here at its
 * marked hook points: rds_open for the synchronous side, the asynchronous
 * connect for the master's loop, which this module never blocks. */
#ifndef FORQ_SENTINEL_H
#define FORQ_SENTINEL_H

#include <stdbool.h>
#include <stddef.h>

#include "rdsurl.h"

struct ev_loop;
struct rds;
struct sentinel_query;

/* A connection to the current master of u (u->nsentinels > 0), checked
 * with ROLE, asking again a bounded number of times with backoff when the
 * node named is not (yet) the master. timeout bounds each connect and call.
 * NULL with err set (never containing a password). */
struct rds *sentinel_open(const struct rdsurl *u, double timeout, char *err, size_t errlen);

/* Seconds between the checks that a connection still goes to the master
 * the sentinels name: after a graceful failover the old master takes (and
 * later drops) writes until the sentinels demote it, which takes them 8 s
 * or more; the checks cut that short. */
#define SENTINEL_RECHECK 2.0

/* 1 when the sentinels now name a master other than the one this process
 * last connected to through sentinel_open, else 0 (also when none answers:
 * a sentinel outage is no reason to drop a working connection). */
int sentinel_has_moved(const struct rdsurl *u, double timeout);

/* The master's address as found: host NULL when no sentinel answered. Runs
 * from the loop, never inside a call of the query's own functions. */
typedef void (*sentinel_found_fn)(const char *host, int port, void *priv);

/* An asynchronous lookup for u on loop; it starts with sentinel_query_start.
 * The query keeps u's sentinels, name and sentinel password (copies). */
struct sentinel_query *sentinel_query_new(struct ev_loop *loop, const struct rdsurl *u,
                                          sentinel_found_fn found, void *priv);
/* Asks the sentinels again (a lookup under way is cut short); found runs
 * exactly once for each start that is not cut short or freed. The first
 * asked is the one that answered last, so a sentinel that is down costs
 * one attempt, not one per lookup. */
void sentinel_query_start(struct sentinel_query *q);
void sentinel_query_free(struct sentinel_query *q);
/* In a forked child: lets go of the sentinel connection the parent keeps
 * (rds_async_forget); q may be NULL. */
void sentinel_query_forget(struct sentinel_query *q);

/* Logs the master's address when it differs from *last (the previous one
 * this process used, size n), then remembers it: one warning per switch;
 * the first address found at info level when announce, else at debug
 * (workers: the master announces it once for the node). */
void sentinel_note_master(char *last, size_t n, const char *name, const char *addr, bool announce);

#endif
