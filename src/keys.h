/* keys: every Redis key name forq uses, built in one place
 * (research/sidekiq-data-model.md §2 for Sidekiq's, DESIGN.md §5-6 for
 * forq's own), under an optional namespace.
 *
 * The namespace (`namespace =` in [forq], FORQ_NAMESPACE) is a deliberate
 * process-wide setting: main (or the client) calls keys_set_namespace once,
 * before anything builds a key or forks, and it never changes afterwards
 * (a HUP that asks for another one is refused by the master). With it set,
 * every key is "<namespace>:<key>", as the redis-namespace gem writes them,
 * so a Sidekiq configured with `redis: { namespace: ... }` reads forq's data
 * and the other way round. Values stored inside keys (queue names in
 * `queues`, identities in `processes`) are never prefixed, as with
 * redis-namespace.
 *
 * HOW TO ADD A KEY, so that it is namespaced:
 *  - a fixed name: add a line X(ID, "name") to KEYS_FIXED below and a
 *    `#define KEY_ID keys_fixed(KEYS_ID_ID)`. Never a string literal: a
 *    `#define KEY_X "x"` would escape the namespace (scripts/check-keys,
 *    run as a unit test, fails the build's tests on one).
 *  - a name built from parts: a keys_* function in keys.c that returns
 *    through keys_build(), which adds the namespace.
 *  - a prefix a Lua script completes (ARGV .. name): pass KEY_*_PREFIX,
 *    which carries the namespace; a script never writes a key name literal.
 *  - a key name that comes back from Redis (a SCAN result, a BRPOP source)
 *    and is parsed: keys_strip() takes the namespace off first.
 * KEY_* are function calls, not literals: they cannot be concatenated with
 * other literals or used in static initializers.
 *
 * Functions returning char * return memory the caller frees. */
#ifndef FORQ_KEYS_H
#define FORQ_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/* Longest namespace accepted (config validates it); fixed-size buffers
 * holding a key (unique locks in the scoreboard) are sized with it. */
#define KEYS_NAMESPACE_MAX 128
/* Room for <namespace>:forq:unique:<40 hex> and its NUL. */
#define KEYS_UNIQUE_LOCK_SIZE (KEYS_NAMESPACE_MAX + 64)

#define KEYS_FIXED(X)                                                                              \
	X(QUEUE_PREFIX, "queue:")                                                                  \
	X(QUEUES, "queues")                                                                        \
	X(SCHEDULE, "schedule")                                                                    \
	X(RETRY, "retry")                                                                          \
	X(DEAD, "dead")                                                                            \
	X(PROCESSES, "processes")                                                                  \
	X(STAT_PROCESSED, "stat:processed")                                                        \
	X(STAT_FAILED, "stat:failed")                                                              \
	X(PROCESS_CLEANUP, "process_cleanup")                                                      \
	X(NODES, "forq:nodes")                                                                     \
	X(NODE_PREFIX, "forq:node:")                                                               \
	X(LEADER, "forq:leader")                                                                   \
	X(LEADER_EPOCH, "forq:leader:epoch")                                                       \
	X(SWEEP_STRIKES, "forq:sweep:strikes")                                                     \
	X(SWEEP_RUNID, "forq:sweep:runid")                                                         \
	X(SWEEP_SETTLE, "forq:sweep:settle")                                                       \
	X(CRONS, "forq:crons")                                                                     \
	X(DAEMONS, "forq:daemons")                                                                 \
	X(UNIQUE_PREFIX, "forq:unique:")                                                           \
	X(SIDEKIQ_CRON_JOBS, "cron_jobs")

enum keys_id {
#define KEYS_ENUM_(id, name) KEYS_ID_##id,
	KEYS_FIXED(KEYS_ENUM_)
#undef KEYS_ENUM_
	KEYS_NFIXED
};

/* The fixed key id, namespaced. Valid until the next keys_set_namespace. */
const char *keys_fixed(enum keys_id id);

#define KEY_QUEUE_PREFIX keys_fixed(KEYS_ID_QUEUE_PREFIX)
#define KEY_QUEUES keys_fixed(KEYS_ID_QUEUES)
#define KEY_SCHEDULE keys_fixed(KEYS_ID_SCHEDULE)
#define KEY_RETRY keys_fixed(KEYS_ID_RETRY)
#define KEY_DEAD keys_fixed(KEYS_ID_DEAD)
#define KEY_PROCESSES keys_fixed(KEYS_ID_PROCESSES)
#define KEY_STAT_PROCESSED keys_fixed(KEYS_ID_STAT_PROCESSED)
#define KEY_STAT_FAILED keys_fixed(KEYS_ID_STAT_FAILED)
#define KEY_PROCESS_CLEANUP keys_fixed(KEYS_ID_PROCESS_CLEANUP)
#define KEY_NODES keys_fixed(KEYS_ID_NODES)
#define KEY_NODE_PREFIX keys_fixed(KEYS_ID_NODE_PREFIX)
#define KEY_LEADER keys_fixed(KEYS_ID_LEADER)
#define KEY_LEADER_EPOCH keys_fixed(KEYS_ID_LEADER_EPOCH)
#define KEY_SWEEP_STRIKES keys_fixed(KEYS_ID_SWEEP_STRIKES)
#define KEY_SWEEP_RUNID keys_fixed(KEYS_ID_SWEEP_RUNID)
#define KEY_SWEEP_SETTLE keys_fixed(KEYS_ID_SWEEP_SETTLE)
/* Cron entries and daemons the masters run, for `forq status`. */
#define KEY_CRONS keys_fixed(KEYS_ID_CRONS)
#define KEY_DAEMONS keys_fixed(KEYS_ID_DAEMONS)
/* sidekiq-cron 1.8's keys, which forq publishes its cron entries in
 * (cronpub.h): the SET cron_jobs holds the *member* names
 * "cron_job:<name>" and the HASH cron_job:<name> the entry. A member is a
 * key name as sidekiq-cron writes it, never prefixed by a namespace (as
 * redis-namespace leaves set members alone); the key functions are. */
#define KEY_SIDEKIQ_CRON_JOBS keys_fixed(KEYS_ID_SIDEKIQ_CRON_JOBS)
/* forq:unique:<sha1 of class, queue and args>, and <that>:run for the
 * while-executing phase; the digest is computed in Lua (unique.lua). */
#define KEY_UNIQUE_PREFIX keys_fixed(KEYS_ID_UNIQUE_PREFIX)

/* Sets the namespace (NULL or "" for none). Call once at startup, before
 * any key is built and before fork; see above. */
void keys_set_namespace(const char *ns);
/* The namespace, "" when none. */
const char *keys_namespace(void);
/* true when ns is acceptable: 1..KEYS_NAMESPACE_MAX printable bytes,
 * no white space. */
bool keys_namespace_is_valid(const char *ns);
/* key without the namespace (a pointer into key), or key itself when it
 * does not start with it. */
const char *keys_strip(const char *key);
/* printf-style name, namespaced: what every builder below returns. */
char *keys_build(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

char *keys_queue(const char *name);
/* A worker's working list: forq:working:<identity>:<lane>. */
char *keys_working(const char *identity, int lane);
/* <identity>: the process's hash (info, busy, beat...); the identity is a
 * key of its own in Sidekiq's model, so it is namespaced like the rest. */
char *keys_process(const char *identity);
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
/* SCAN pattern of a node's working lists: forq:working:<identity>:*, the
 * namespace and identity escaped so glob characters match themselves. */
char *keys_working_pattern(const char *identity);
/* Sidekiq's Metrics tab (metrics/tracking.rb, shared.rb), for the UTC
 * minute of epoch seconds now. 7.x: j|YYYYMMDD|H:M (hour and minute
 * unpadded) and the histogram <class>-DD-HH:M; 8.x: j|YYMMDD|H:MM, its
 * ten-minute rollup j|YYMMDD|H:<tens digit of the minute> and the
 * histogram h|<class>-D-H:M. */
char *keys_metrics_v7(double now);
char *keys_metrics_v8(double now);
char *keys_metrics_v8_rollup(double now);
char *keys_metrics_hist_v7(const char *job_class, double now);
char *keys_metrics_hist_v8(const char *job_class, double now);
/* <total_key>:YYYY-MM-DD (UTC) for epoch seconds now. total_key is a
 * KEY_STAT_* and already carries the namespace: not added again. */
char *keys_stat_daily(const char *total_key, double now);

#endif
