/* cron: the leader's periodic enqueues ([cron "name"] sections, DESIGN.md
 * §6.2). Each tick is pushed exactly once in the cluster: the entry's
 * watermark (the last tick dealt with) and the push of the tick's job happen
 * in one script fenced by the leader lease (src/lua/cron.lua), and the jid is
 * derived from entry and tick. "Now" is Redis's TIME, so clocks of the
 * nodes do not matter. Missed ticks (no leader, Redis away) follow the
 * entry's catch_up; a new or changed entry starts from now, never from the
 * past. */
#ifndef FORQ_CRON_H
#define FORQ_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rds.h"

struct cron;

/* cfg must stay valid until cron_reconfigure or cron_free. NULL with err
 * when an entry does not compile (cron_check_config would have said). */
struct cron *cron_new(struct ev_loop *loop, struct rds_async *rds, const struct config *cfg,
		      char *err, size_t errlen);
/* Fires only while it holds lease ("identity|epoch"; NULL: not leader). */
void cron_set_lease(struct cron *c, const char *lease);
/* After a reload: the new entries replace the old. On error (-1, which the
 * configuration checks make unreachable) no entry runs: the old ones point
 * into the configuration the caller frees. Entries no longer configured
 * leave forq:crons; their state expires after 7 days. */
int cron_reconfigure(struct cron *c, const struct config *cfg, char *err, size_t errlen);
/* Ticks this node enqueued and skipped as leader since it started. */
void cron_counts(const struct cron *c, unsigned long long *fired, unsigned long long *skipped);
/* Frees now, or after the last pending Redis reply. */
void cron_free(struct cron *c);

#endif
