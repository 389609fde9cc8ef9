/* cronplan: the pure half of cron (cron.c runs it against Redis): which
 * ticks of an entry are due and which of them to push under its catch_up
 * policy, the jid of a tick, and checking [cron] sections. No I/O apart
 * from reading zone files. */
#ifndef FORQ_CRONPLAN_H
#define FORQ_CRONPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cronexpr.h"
#include "tz.h"

/* At most this many missed ticks of one entry are pushed with catch_up = all;
 * older ones are skipped with a warning. */
#define CRON_CATCH_UP_MAX 1000
/* catch_up = none: a tick later than this many seconds is skipped. */
#define CRON_ON_TIME 60
/* Skipped ticks are counted up to this many per round. */
#define CRON_COUNT_MAX 100000

/* An entry compiled: expression and zone. */
struct cronplan {
	struct cronexpr *expr;
	struct tz *zone;
	char *spec; /* what makes two versions of the entry the same (see cronplan_init) */
};

/* Compiles entry e. -1 with "schedule: ..." or "timezone: ..." in err. */
int cronplan_init(struct cronplan *p, const struct config_cron *e, char *err, size_t errlen);
void cronplan_fini(struct cronplan *p);

/* The deterministic jid of an entry's tick: 16 hex digits of the entry
 * name's FNV-1a hash, then the tick as 8 hex digits. */
void cronplan_jid(const char *name, int64_t tick, char out[25]);

/* The ticks to push for an entry whose last handled tick is wm, at time now
 * (epoch seconds from Redis): written to ticks (room for CRON_CATCH_UP_MAX,
 * oldest first). *newest is the newest due tick (the new watermark; wm when
 * nothing is due); *skipped counts due ticks not pushed (at most
 * CRON_COUNT_MAX). Returns how many to push. */
size_t cronplan_due(const struct cronplan *p, enum config_catch_up policy, int64_t wm,
		    double now, int64_t *ticks, int64_t *newest, long *skipped);

#endif
