/* keys: every Redis key name forq uses, built in one place
 * (research/sidekiq-data-model.md §2 for Sidekiq's, DESIGN.md §5-6 for
 * forq's own). Pure. Functions returning char * return memory the caller
 * frees. */
#ifndef FORQ_KEYS_H
#define FORQ_KEYS_H

#include <stddef.h>

#define KEY_QUEUE_PREFIX "queue:"
#define KEY_QUEUES "queues"
#define KEY_SCHEDULE "schedule"
#define KEY_RETRY "retry"
#define KEY_DEAD "dead"
#define KEY_PROCESSES "processes"
#define KEY_STAT_PROCESSED "stat:processed"
#define KEY_STAT_FAILED "stat:failed"
#define KEY_PROCESS_CLEANUP "process_cleanup"
#define KEY_NODES "forq:nodes"
#define KEY_NODE_PREFIX "forq:node:"
#define KEY_LEADER "forq:leader"
#define KEY_LEADER_EPOCH "forq:leader:epoch"
#define KEY_SWEEP_STRIKES "forq:sweep:strikes"
#define KEY_SWEEP_RUNID "forq:sweep:runid"
#define KEY_SWEEP_SETTLE "forq:sweep:settle"
/* Cron entries and daemons the masters run, for `forq status`. */
#define KEY_CRONS "forq:crons"
#define KEY_DAEMONS "forq:daemons"
/* sidekiq-cron 1.8's keys, which forq publishes its cron entries in
 * (cronpub.h): the SET cron_jobs holds the *member* names
 * "cron_job:<name>" and the HASH cron_job:<name> the entry. A member is a
 * key name as sidekiq-cron writes it, never prefixed by a namespace (as
 * redis-namespace leaves set members alone); the key functions are. */
#define KEY_SIDEKIQ_CRON_JOBS "cron_jobs"
/* forq:unique:<sha1 of class, queue and args>, and <that>:run for the
 * while-executing phase; the digest is computed in Lua (unique.lua). */
#define KEY_UNIQUE_PREFIX "forq:unique:"

char *keys_queue(const char *name);
/* A worker's working list: forq:working:<identity>:<lane>. */
char *keys_working(const char *identity, int lane);
char *keys_work(const char *identity);    /* <identity>:work (Sidekiq 6.4.2+) */
char *keys_workers(const char *identity); /* <identity>:workers (<= 6.4.1) */
char *keys_signals(const char *identity); /* <identity>-signals */
char *keys_node(const char *identity);    /* forq:node:<identity> */
char *keys_lost(const char *jid);         /* forq:lost:<jid>: abnormal losses */
char *keys_cron(const char *name);        /* forq:cron:<name>: watermark hash */
char *keys_sidekiq_cron_member(const char *name);  /* cron_job:<name>, a member of cron_jobs */
char *keys_sidekiq_cron_job(const char *name);     /* cron_job:<name>: the HASH */
char *keys_sidekiq_cron_enqueued(const char *name); /* cron_job:<name>:enqueued: ZSET of ticks */
char *keys_sidekiq_cron_jids(const char *name);    /* cron_job:<name>:jid_history: LIST */
char *keys_daemon(const char *name);      /* forq:daemon:<name>: the lease */
char *keys_daemon_epoch(const char *name); /* forq:daemon:<name>:epoch: token counter */
/* forq:daemon:<name>:runid: the Redis run id the daemon's last acquire saw;
 * forq:daemon:<name>:settle: while it exists (after Redis lost or changed
 * its data) nobody acquires the daemon. */
char *keys_daemon_runid(const char *name);
char *keys_daemon_settle(const char *name);
/* forq:daemon:<name>:cooldown:<identity>: a node that gave a crash-looping
 * daemon away does not take it back until this expires. */
char *keys_daemon_cooldown(const char *name, const char *identity);
/* SCAN pattern of a node's working lists: forq:working:<identity>:* */
char *keys_working_pattern(const char *identity);
/* stat:processed:YYYY-MM-DD (UTC) for epoch seconds now. */
char *keys_stat_daily(const char *total_key, double now);

#endif
