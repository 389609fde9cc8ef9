/* cronpub: what a cron entry looks like outside forq, pure code: the job
 * one tick pushes (plain, from a message template, or wrapped for
 * ActiveJob, with the tick appended for date_as_argument), and the record
 * sidekiq-cron 1.8's Web tab and poller read (cron_job:<name>, see
 * research/sidekiq-7-8-and-cron.md): a cron string fugit parses, the
 * message, and the time formats of its :enqueued set and last_enqueue_time. */
#ifndef FORQ_CRONPUB_H
#define FORQ_CRONPUB_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* What ActiveJob's Sidekiq adapter pushes. */
#define CRONPUB_AJ_WRAPPER "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"

/* Room for cronpub_member and cronpub_last_time. */
#define CRONPUB_TIME_MAX 40

/* The queue a tick's job goes to: ActiveJob's prefix and delimiter applied
 * for active_job entries, else queue ("default" when unset). Caller frees. */
char *cronpub_queue(const struct config_cron *e);

/* The cron string as fugit reads it: a macro spelled out in fields (fugit
 * takes no zone after one), then the zone forq computes the ticks in
 * ("UTC" when unset), so that sidekiq-cron's processes see the same ticks
 * whatever their own zone. Caller frees. */
char *cronpub_cron(const struct config_cron *e);

/* The message field: the entry's template as written, or
 * {"queue","class","args"[,"retry"]} as sidekiq-cron builds it (args
 * without the date, queue without ActiveJob's prefix). Caller frees. */
char *cronpub_message(const struct config_cron *e);

/* The :enqueued member of a tick, ISO 8601 in UTC ("2024-01-05T02:00:00Z"),
 * and a last_enqueue_time ("2024-01-05 02:00:03 +0000"). */
void cronpub_member(int64_t t, char out[CRONPUB_TIME_MAX]);
void cronpub_last_time(int64_t t, char out[CRONPUB_TIME_MAX]);

/* The payload of an entry's tick with jid, created and enqueued at now.
 * NULL with err when the entry cannot make one (bad args, a message that
 * is not an object or names no class). Caller frees. */
char *cronpub_payload(const struct config_cron *e, int64_t tick, const char *jid, double now,
                      char *err, size_t errlen);

#endif
