/*
 * forq.h - the public plugin API of forq (see forq-plugin(3)).
 *
 * A plugin is a shared object that defines
 *
 *     FORQ_PLUGIN_API;                      // exports the API version it was built for
 *     int forq_plugin_init(forq_host *host) // registers handlers and hooks
 *
 * and is listed in `plugins =` or given with `-r`. With --prefork it is
 * loaded and initialised once in the master, before any worker is forked,
 * so what init builds is shared copy-on-write by every worker; without it,
 * every worker loads it after fork. Handlers run inside worker processes,
 * one job at a time per process; a crash inside a handler costs only that
 * worker, and the job is recovered by forq.
 *
 * Compatibility: a plugin is loaded only when its FORQ_PLUGIN_API version
 * equals FORQ_API_VERSION. Members are only ever appended to forq_host,
 * forq_job and forq_daemon; check `size` (FORQ_HOST_HAS) before using a
 * member newer than your version (register_daemon and checkin are such).
 *
 * A handler registered for the class "*" runs every job whose class has
 * no handler of its own (the Ruby plugin looks such classes up in Ruby).
 */
#ifndef FORQ_H
#define FORQ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FORQ_API_VERSION 1

enum forq_status {
	FORQ_OK = 0,    /* the job succeeded / the hook succeeded */
	FORQ_FAIL = -1, /* the job failed: error says why; it follows the retry rules */
};

enum forq_log_level {
	FORQ_LOG_DEBUG = 0,
	FORQ_LOG_INFO = 1,
	FORQ_LOG_WARN = 2,
	FORQ_LOG_ERROR = 3,
};

/* The job being run. Every pointer is valid only during the handler call. */
typedef struct forq_job {
	size_t size;              /* sizeof(forq_job) as forq built it */
	const char *job_class;    /* the payload's "class" */
	const char *jid;          /* the payload's "jid" */
	const char *queue;        /* queue it was fetched from */
	const char *args_json;    /* the payload's "args" array as JSON text */
	const char *payload_json; /* the whole payload as JSON text */
	int retry_count;          /* -1 on the first run, then Sidekiq's retry_count */
} forq_job;

#define FORQ_ERROR_CLASS_MAX 128
#define FORQ_ERROR_MESSAGE_MAX 1024

/* Filled by a failing handler; becomes error_class / error_message. */
typedef struct forq_error {
	char error_class[FORQ_ERROR_CLASS_MAX];
	char error_message[FORQ_ERROR_MESSAGE_MAX];
} forq_error;

typedef struct forq_host forq_host;

/* Returns FORQ_OK or FORQ_FAIL (with err filled, see forq_error_set). */
typedef int (*forq_handler_fn)(const forq_job *job, forq_error *err, void *user);
/* before_fork runs once in the master (prefork only); after_fork runs in
 * every worker, respawns included. Returning FORQ_FAIL makes the worker
 * exit with status 78 (configuration error), which is not respawned. */
typedef int (*forq_hook_fn)(forq_host *host, void *user);
/* Runs when the plugin is unloaded at process exit. */
typedef void (*forq_fini_fn)(void *user);

/* The daemon being run (a [daemon] section with `plugin = <entry>`). Every
 * pointer is valid for the whole daemon call. */
typedef struct forq_daemon {
	size_t size;       /* sizeof(forq_daemon) as forq built it */
	const char *name;  /* the section's name: [daemon "name"] */
	const char *entry; /* the entry point it names (register_daemon) */
	const char *scope; /* "cluster" or "node" */
	long long token;   /* cluster: the lease's fencing token (also in
			    * FORQ_DAEMON_TOKEN); node: 0 */
	/* ---- appended later: check size ---- */
	const char *target;    /* a section's `ruby = Class`: the class; else NULL */
	const char *args_json; /* its `args =` (a JSON array text), "[]" by default */
} forq_daemon;

/* What a failing handler may add to its forq_error (host->set_failure), for
 * plugins that carry a job system's own retry policy, as the Ruby plugin
 * carries Sidekiq's. Pointers need only live until set_failure returns. */
enum forq_disposition {
	FORQ_DISPOSE_DEFAULT = 0, /* forq decides from the payload, as for any failure */
	FORQ_DISPOSE_RETRY = 1,   /* to the retry set, retry_in seconds from now */
	FORQ_DISPOSE_DEAD = 2,    /* to the dead set at once */
	FORQ_DISPOSE_DISCARD = 3, /* dropped, as "retry": false or "dead": false */
};

typedef struct forq_failure {
	size_t size;                /* sizeof(forq_failure) as the plugin built it */
	int disposition;            /* enum forq_disposition */
	double retry_in;            /* seconds, for FORQ_DISPOSE_RETRY */
	const char *backtrace_json; /* JSON value stored as "error_backtrace", or NULL */
	const char *error_message;  /* full message (forq_error's is cut at 1 KiB), or NULL */
} forq_failure;

/* Lifecycle events of a worker process (host->set_event_hook). */
enum forq_event {
	FORQ_EVENT_QUIET = 1,    /* the worker stops fetching (TSTP/USR1, Web UI Quiet) */
	FORQ_EVENT_SHUTDOWN = 2, /* the worker is about to exit (after its last job) */
};
typedef void (*forq_event_fn)(forq_host *host, int event, void *user);

/* Forks like fork(2): 0 in the child, the pid in the parent, -1 with errno.
 * Called with every signal blocked; both sides must return with the same
 * mask. For runtimes with a fork protocol of their own (Ruby). */
typedef pid_t (*forq_fork_fn)(void *user);

/* Runs in a child process of the master until it returns; the return value
 * is that child's exit status (FORQ_OK = 0, FORQ_FAIL = 1, or 1..255). The
 * daemon is then restarted with backoff, as for any exit forq did not ask
 * for. SIGTERM asks it to stop (default action: die); install a handler to
 * stop gracefully within stop_timeout. */
typedef int (*forq_daemon_fn)(const forq_daemon *daemon, void *user);

/* What forq offers a plugin. Valid for the life of the process. */
struct forq_host {
	unsigned api_version; /* FORQ_API_VERSION of the running forq */
	size_t size;          /* sizeof(forq_host) as forq built it */
	const char *plugin_path;
	/* Registers fn for a job class; FORQ_FAIL if the class is taken. */
	int (*register_handler)(forq_host *host, const char *job_class, forq_handler_fn fn,
				void *user);
	/* Sets this plugin's lifecycle hooks; any may be NULL. */
	void (*set_hooks)(forq_host *host, forq_hook_fn before_fork, forq_hook_fn after_fork,
			  forq_fini_fn fini, void *user);
	/* Logs through forq's logger (text or JSON, with role and pid). */
	void (*log)(forq_host *host, int level, const char *message);
	void *forq_private;
	/* ---- appended later within API version 1: check FORQ_HOST_HAS ---- */
	/* Registers fn as the daemon entry point `entry`, named by [daemon]
	 * sections with `plugin = entry`; FORQ_FAIL if the entry is taken. */
	int (*register_daemon)(forq_host *host, const char *entry, forq_daemon_fn fn,
			       void *user);
	/* From inside a daemon: one check-in (see checkin_timeout). A no-op
	 * anywhere else. Cheap (one write of one byte); call it freely. */
	void (*checkin)(forq_host *host);
	/* ---- appended later within API version 1: check FORQ_HOST_HAS ---- */
	/* From inside a handler about to return FORQ_FAIL: how to dispose of
	 * the job (see forq_failure). Ignored anywhere else. */
	void (*set_failure)(forq_host *host, const forq_failure *failure);
	/* Called in worker processes on quiet and before exit. */
	void (*set_event_hook)(forq_host *host, forq_event_fn fn, void *user);
	/* Makes fn the way forq forks its workers and daemons (from the
	 * master, or from a worker with --no-prefork: never). One plugin at
	 * most; FORQ_FAIL if another has set one. */
	int (*set_fork)(forq_host *host, forq_fork_fn fn, void *user);
	/* The `-r`/`require` entries that are not shared objects (Ruby files
	 * and Rails roots), for the language plugin forq loads for them. */
	const char *const *scripts;
	size_t nscripts;
	const char *redis_url;   /* the Redis forq uses (with its password) */
	const char *environment; /* -e / environment, or NULL */
	/* ---- appended later within API version 1: check FORQ_HOST_HAS ---- */
	/* `namespace =`: every key is "<redis_namespace>:<key>", as the
	 * redis-namespace gem writes them; NULL when none. (Not `namespace`:
	 * a C++ keyword.) */
	const char *redis_namespace;
};

/* true when the running forq's host table has `member` (older forq builds
 * of the same API version have a shorter table). */
#define FORQ_HOST_HAS(host, member)                                                                \
	(offsetof(forq_host, member) + sizeof((host)->member) <= (host)->size)

/* Exported even when a plugin builds with -fvisibility=hidden. */
#define FORQ_EXPORT __attribute__((visibility("default")))

/* Declared here so that C++ gives the definition external linkage too. */
FORQ_EXPORT extern const unsigned forq_plugin_api_version;

/* Put this once in the plugin, at file scope. */
#define FORQ_PLUGIN_API FORQ_EXPORT const unsigned forq_plugin_api_version = FORQ_API_VERSION

/* The plugin's entry point: register handlers and hooks, return FORQ_OK. */
FORQ_EXPORT int forq_plugin_init(forq_host *host);

/* Convenience for handlers: fill a forq_error and return FORQ_FAIL. */
static inline int forq_error_set(forq_error *err, const char *error_class, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline int forq_error_set(forq_error *err, const char *error_class, const char *fmt, ...)
{
	va_list ap;
	snprintf(err->error_class, sizeof(err->error_class), "%s", error_class);
	va_start(ap, fmt);
	vsnprintf(err->error_message, sizeof(err->error_message), fmt, ap);
	va_end(ap);
	return FORQ_FAIL;
}

/* Convenience for daemons: check in if this forq supports check-ins. */
static inline void forq_checkin(forq_host *host)
{
	if (FORQ_HOST_HAS(host, checkin) && host->checkin)
		host->checkin(host);
}

#ifdef __cplusplus
}
#endif

#endif
