/* job: Sidekiq job payloads (research/sidekiq-data-model.md §3, §6). The only
 * module that includes the JSON library. Pure: no I/O, `now` and random
 * numbers are passed in. Payloads are read with jansson; payloads that forq
 * changes (retry fields, enqueued_at) are rewritten by splicing new member
 * values into the original text, so every other byte - large integers, float
 * digits, key order, unknown fields - stays exactly as the client wrote it. */
#ifndef FORQ_JOB_H
#define FORQ_JOB_H

#include <stdbool.h>
#include <stddef.h>

#define JOB_MAX_RETRIES_DEFAULT 25
#define JOB_ERROR_MESSAGE_MAX 10000 /* Sidekiq cuts error_message here */
#define JOB_DEAD_TIMEOUT 15552000.0 /* 180 days */
#define JOB_DEAD_MAX 10000
/* Bytes of jid forq can run: the scoreboard carries a running job's jid to
 * the master, which renews its unique lease and recovers it by that jid. */
#define JOB_JID_MAX 127

enum job_retry_kind {
	JOB_RETRY_DEFAULT, /* "retry" missing or true: the class/default limit */
	JOB_RETRY_NONE,    /* "retry": false - no retry, no dead entry */
	JOB_RETRY_COUNT,   /* "retry": N */
};

/* A parsed payload. Strings are owned by the struct (job_free). */
struct job {
	char *raw;        /* the payload text exactly as fetched */
	char *job_class;  /* "class" */
	char *wrapped;    /* "wrapped" (ActiveJob's job class) or NULL */
	char *jid;        /* "jid" ("" when absent) */
	size_t jid_len;   /* bytes of "jid" decoded: > strlen(jid) when it holds \u0000 */
	char *queue;      /* "queue" ("" when absent) */
	char *args_json;  /* "args" re-serialised compactly, "[]" when absent */
	char *retry_queue;/* "retry_queue" or NULL */
	enum job_retry_kind retry_kind;
	int retry_max;    /* for JOB_RETRY_COUNT */
	bool has_retry_count;
	int retry_count;  /* -1 when absent */
	bool dead;        /* false only when the payload says "dead": false */
	double created_at, enqueued_at; /* seconds; ms (8.x ints) converted; 0 if absent */
	double retry_for; /* seconds, 0 when absent */
	double failed_at; /* seconds, 0 when absent */
	char *unique;     /* "forq_unique": a lock type forq stamped, or NULL */
	double unique_ttl;/* "forq_unique_ttl" seconds, 0 when absent */
};

/* Parses the len bytes at raw: a payload is bytes, and a NUL byte in it is
 * data (which JSON text cannot hold). Returns 0, or -1 with a reason in err
 * such as "payload is not valid JSON: ... at line 1 column 5" or "payload
 * has no class": the caller sends such a payload to the dead set. j->raw is
 * a NUL-terminated copy of the len bytes in both cases (on success it holds
 * no NUL, so strlen(j->raw) == len); on failure the other fields are
 * zero/NULL. Call job_free in both cases. */
int job_parse(struct job *j, const char *raw, size_t len, char *err, size_t errlen);
/* Whether forq can run a parsed job: -1 with err when its jid is longer
 * than JOB_JID_MAX bytes or holds a NUL character (a jid forq would carry
 * cut short), else 0. Such a job goes to the dead set unrun. */
int job_check(const struct job *j, char *err, size_t errlen);
void job_free(struct job *j);

/* What happens after a failure (Sidekiq 6.4 JobRetry semantics). */
enum job_outcome { JOB_OUT_RETRY, JOB_OUT_DEAD, JOB_OUT_DISCARD };

struct job_failure {
	const char *error_class;
	const char *error_message; /* cut to JOB_ERROR_MESSAGE_MAX characters */
	const char *fetched_queue; /* queue the job was fetched from */
	int default_max;           /* per-class `retry` from config, else 25 */
	double now;                /* epoch seconds */
	double rnd;                /* uniform [0,1): jitter */
	/* Set by a handler that carries its own retry policy (the Ruby
	 * plugin): 0 = decide as above; else a forced outcome. */
	int forced;                /* 0, or 1 + enum job_outcome */
	double retry_in;           /* seconds, with forced retry */
	const char *backtrace_json;/* "error_backtrace" value (JSON text) or NULL */
};

/* Builds the payload that goes to the retry or dead set after a failure:
 * queue = retry_queue or fetched queue; error_message, error_class;
 * retry_count 0 + failed_at on the first failure, else retry_count+1 +
 * retried_at. Decides the outcome: retry while retry_count < max (and
 * retry_for not exceeded), dead when exhausted (unless "dead": false, then
 * discard), discard at once for "retry": false. *score is the retry time
 * (now + count^4 + 15 + rand(10)*(count+1)) or now for dead. A forced
 * outcome (f->forced) replaces the decision and f->retry_in the delay;
 * f->backtrace_json becomes "error_backtrace".
 * Returns a new string the caller frees (NULL for JOB_OUT_DISCARD). */
char *job_failure_payload(const struct job *j, const struct job_failure *f,
			  enum job_outcome *outcome, double *score);

/* The dead-set payload of a job whose worker process died under it too
 * often (a poison pill): error_class "Forq::ProcessLost", error_message,
 * and retry_count/failed_at/retried_at as for a failure, so the Web UI's
 * morgue shows it like any dead job. Never NULL; caller frees. */
char *job_lost_payload(const struct job *j, const char *error_message, double now);

/* Sidekiq's retry delay for retry_count `count`; rnd in [0,1) picks
 * rand(10) = floor(rnd * 10). */
double job_retry_delay(int count, double rnd);

/* Payload for the dead set when raw could not be parsed: raw is kept as is
 * (Sidekiq adds the raw string); returns a copy the caller frees. */
char *job_dead_raw(const char *raw);

/* raw with "enqueued_at" set to now (replaced in place when present,
 * appended when not), as the poller and requeues need; a raw that is not a
 * JSON object comes back unchanged. Never NULL; caller frees. */
char *job_with_enqueued_at(const char *raw, double now);

/* raw with members set (replaced or appended): kv holds n pairs of a plain
 * ASCII name and the JSON text of its value, trusted as valid. At most 8.
 * NULL when raw is not an object. Caller frees. */
char *job_with_members(const char *raw, const char *const *kv, size_t n);


/* A new payload for `forq push`: class, args (a JSON array text, validated),
 * queue, retry ("true", "false" or a number text; NULL = omit), jid (any
 * non-empty UTF-8 string of at most JOB_JID_MAX bytes; NULL = rnd_hex, which
 * must be 24 lowercase hex characters), created_at = now and
 * enqueued_at = now unless scheduled. Key order as the Ruby client:
 * retry, queue, class, args, jid, created_at, enqueued_at.
 * Returns NULL with err filled when args is not a JSON array (or class,
 * queue, retry or jid is invalid). */
char *job_build(const char *job_class, const char *args_json, const char *queue,
		const char *retry, const char *jid, const char *rnd_hex, double now,
		bool scheduled, char *err, size_t errlen);

/* Work entry for the Busy page: {"queue":q,"payload":"<raw as a JSON
 * string>","run_at":<int seconds>}. Caller frees. */
char *job_work_entry(const char *queue, const char *raw, double now);

/* Formats epoch seconds as Sidekiq writes scores and timestamps: always with
 * a decimal point and 6+ fractional digits ("1795380437.166057"). */
void job_format_time(char *buf, size_t n, double t);

/* s as a quoted JSON string ("a\"b"), for JSON built by other modules
 * (the process info). Caller frees. */
char *job_json_quote(const char *s);

/* A top-level member of a JSON object text: a copy of a string member
 * (NULL if absent or not a string; caller frees), or a number (0, or -1). */
char *job_json_get_string(const char *json, const char *key);
int job_json_get_number(const char *json, const char *key, double *out);

/* The string a unique lock covers (DESIGN.md section 6.3):
 * class "\n" queue "\n" canonical JSON of args, where canonical is compact
 * with object keys sorted. With npositions > 0 only those positions of args
 * count, as a JSON array in the listed order (a missing position is null).
 * Redis keys use its SHA-1 (computed in Lua). NULL when args_json is not a
 * JSON array; caller frees. */
char *job_lock_string(const char *job_class, const char *queue, const char *args_json,
		      const int *positions, size_t npositions);

/* What JSON text holds: '[' an array, '{' an object, 'v' another value,
 * 0 when it is not JSON (for cron entries whose args are a string). */
char job_json_kind(const char *text);

/* Reads "queue" of a payload cheaply (for requeues); NULL if none. Caller frees. */
char *job_peek_queue(const char *raw);

#endif
