/* config: the INI configuration (DESIGN.md section 3) as one table of
 * options with type, range and default. Parsing works from strings so it is
 * unit-tested without files; errors are reported as "file:line: message".
 * Overrides from the environment and the command line go through the same
 * table, so every value is validated in exactly one place. */
#ifndef FORQ_CONFIG_H
#define FORQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

#define CONFIG_PROCESSES_MAX 1024
#define CONFIG_EXIT_USAGE 64
#define CONFIG_EXIT_CONFIG 78

struct config_queue {
	char *name;
	int weight;
};

/* Unique-job lock types (DESIGN.md section 6.3), Sidekiq's names. */
enum config_unique {
	UNIQUE_NONE,
	UNIQUE_UNTIL_EXECUTING,
	UNIQUE_UNTIL_EXECUTED,
	UNIQUE_WHILE_EXECUTING,
	UNIQUE_UNTIL_AND_WHILE_EXECUTING,
	UNIQUE_UNTIL_EXPIRED,
};

#define CONFIG_UNIQUE_ARGS_MAX 32

/* A [job "Class"] section: how forq runs jobs of that class. */
struct config_job {
	char *name;       /* the Sidekiq class */
	char **argv;      /* exec = ... split without a shell; NULL-terminated, or NULL */
	double timeout;   /* seconds; 0 = no limit */
	int retry;        /* default retry limit for payloads with "retry": true; -1 = 25 */
	enum config_unique unique;
	double unique_ttl; /* seconds an enqueue-phase lock lasts (default 3600) */
	/* unique_args = 0, 2: the lock covers only these positions of "args";
	 * nunique_args 0 = all of them. */
	int unique_args[CONFIG_UNIQUE_ARGS_MAX];
	size_t nunique_args;
};

enum config_catch_up { CATCH_UP_LATEST, CATCH_UP_ALL, CATCH_UP_NONE };

/* The status an entry is published with in sidekiq-cron's tab: UNSET keeps
 * what the tab says (enabled for a new entry). */
enum config_cron_status { CRON_STATUS_UNSET, CRON_STATUS_ENABLED, CRON_STATUS_DISABLED };

/* A [cron "name"] section, or an entry of the cron_schedule file
 * (schedule_yml.h): a periodic enqueue run by the leader. */
struct config_cron {
	char *name;
	char *source;        /* the schedule.yml it came from; NULL for a [cron] section */
	int line;            /* of the section header (or yml entry), for later messages */
	char *schedule;      /* as written */
	char *timezone;      /* IANA name; default "UTC" */
	char *job_class;     /* class = */
	char *args;          /* JSON array text; default "[]" */
	char *queue;         /* default "default" */
	char *retry;         /* JSON value for the payload's "retry": "true" (default), "false", N */
	enum config_catch_up catch_up;
	bool overlap_forbid; /* overlap = forbid: skip a tick while the last run is queued or running */
	/* sidekiq-cron's entry keys (schedule.yml only; see cronpub.h) */
	char *description;
	enum config_cron_status status;
	bool date_as_argument; /* the tick (float seconds) is appended to args */
	bool active_job;       /* pushed as an ActiveJob JobWrapper */
	char *queue_name_prefix, *queue_name_delimiter; /* ActiveJob's, NULL = none / "_" */
	char *message;         /* payload template (JSON object text) or NULL */
	bool symbolize_args;   /* published only: forq's jobs get JSON args */
};

enum config_daemon_scope { DAEMON_SCOPE_CLUSTER, DAEMON_SCOPE_NODE };

/* A [daemon "name"] section: a long-running process supervised by the
 * master, one per cluster or one per node. */
/* The daemon entry point the Ruby plugin registers for `ruby = Class`. */
#define CONFIG_RUBY_DAEMON_ENTRY "ruby"

struct config_daemon {
	char *name;
	int line;
	char **argv;          /* exec = ...; NULL when plugin is used */
	char *plugin;         /* plugin = entry point a plugin registered; NULL with exec */
	char *ruby;           /* ruby = Class: plugin is then CONFIG_RUBY_DAEMON_ENTRY */
	char *args;           /* args = JSON array for the ruby class; NULL = [] */
	enum config_daemon_scope scope;
	double checkin_timeout; /* seconds without a check-in before it is hung; 0 = off */
	double stop_timeout;    /* seconds between TERM and KILL (default 10) */
};

/* RSS counts every resident page; PSS shares out the pages a worker still
 * shares with the master and its siblings (copy-on-write after prefork). */
enum config_rss_kind { CONFIG_RSS, CONFIG_PSS };

struct config {
	char *path; /* file it was read from, NULL when none */
	char *redis_url;
	/* TLS for rediss://: "" = the system CA store / no client certificate */
	char *tls_ca_file;
	char *tls_cert_file;
	char *tls_key_file;
	int processes;       /* resolved worker count (>= 1) */
	bool processes_auto; /* "auto": count usable CPUs at start and on HUP */
	bool prefork;
	bool sidekiq_metrics; /* write Sidekiq 7/8 Metrics counts (skmetrics.h) */
	struct config_queue *queues;
	size_t nqueues;
	bool queues_weighted; /* some weight was given (even 1): Sidekiq's random order */
	double shutdown_timeout;
	char *tag;
	char **plugins;
	size_t nplugins;
	char *user;
	char *environment;
	enum log_level log_level;
	enum log_format log_format;
	char *pidfile;
	/* Operations: worker recycling and the log file. */
	long max_rss_kb;                   /* replace a worker grown past this; 0 = off */
	enum config_rss_kind max_rss_kind; /* what max_rss measures */
	long max_jobs;                     /* replace a worker after this many jobs; 0 = off */
	char *log_file;                    /* append log lines here, not to stdout */
	double node_dead_after; /* seconds without a node heartbeat before a sweep may act */
	double sweep_interval;  /* seconds between orphan-sweep rounds */
	double leader_ttl;      /* seconds a leader lease lasts unrenewed */
	double leader_renew;    /* seconds between a leader's renewals */
	double unique_lease;    /* seconds a runtime unique lock lasts unrenewed (renewed at 1/3) */
	double daemon_ttl;      /* seconds a cluster daemon's lease lasts unrenewed */
	double daemon_renew;    /* seconds between a holder's renewals */
	double daemon_acquire;  /* seconds between attempts to take a free daemon */
	char *http_listen;      /* ADDRESS:PORT of /metrics, /healthz, /readyz; NULL = off */
	char *namespace;        /* key prefix as redis-namespace's (keys.h); NULL = none */
	char *sidekiq_config;   /* a Sidekiq sidekiq.yml read under this file (sidekiq_yml.h) */
	char *cron_schedule;    /* sidekiq-cron schedule.yml, as written (relative to path's directory) */
	bool cron_publish;      /* publish cron entries in sidekiq-cron's keys */
	char *sentinel_password;     /* AUTH to the sentinels of a redis+sentinel:// URL */
	int min_replicas;            /* WAIT for this many replicas after a worker's write; 0 = off */
	double min_replicas_timeout; /* seconds each such WAIT may take */
	struct config_job *jobs;
	size_t njobs;
	struct config_cron *crons;
	size_t ncrons;
	struct config_daemon *daemons;
	size_t ndaemons;
};

/* Where the error is ("file:line", "FORQ_PROCESSES", "--processes") and what. */
struct config_error {
	char where[512];
	char msg[512];
};

/* One value applied after the file: from the environment or command line. */
struct config_override {
	const char *key;    /* [forq] key, e.g. "processes" */
	const char *value;  /* borrowed */
	const char *origin; /* "FORQ_PROCESSES", "--processes", ... */
};

struct rdsurl;
/* redis_url parsed, with the tls_* files added: 0, or -1 with err naming
 * the key (never containing the password). */
int config_rdsurl(const struct config *c, struct rdsurl *u, char *err, size_t n);

/* A config holding every built-in default. Caller frees with config_free. */
struct config *config_new(void);
void config_free(struct config *c);

/* Sets section/key from text (section NULL means "forq"). 0, or -1 with a
 * message in err. */
int config_set(struct config *c, const char *section, const char *key, const char *value,
	       char *err, size_t errlen);

/* Parses INI text into c; name is used in error positions. 0 or -1. */
int config_parse_string(struct config *c, const char *text, const char *name,
			struct config_error *err);
int config_parse_file(struct config *c, const char *path, struct config_error *err);

/* The whole file as a string the caller frees, or NULL with err filled
 * ("path:0"); a file with a NUL byte is refused. */
char *config_read_file(const char *path, struct config_error *err);

/* Builds a config (configload.c), each layer over the one before:
 * defaults; a Sidekiq sidekiq.yml (path itself when it is YAML, else the
 * INI's sidekiq_config), its environment section chosen by the
 * "environment" override, the INI's environment, APP_ENV, RAILS_ENV,
 * RACK_ENV or "development", as Sidekiq chooses it; the INI file's own
 * keys; then each override in order (environment, then command line).
 * Returns a config the caller frees, or NULL with err filled. */
struct config *config_load(const char *path, const struct config_override *ov, size_t nov,
			   struct config_error *err);

/* Frees what an entry owns (not the entry itself). */
void config_cron_fini(struct config_cron *e);

/* "until_executed" etc. for a lock type, and back (-1 for an unknown name). */
const char *config_unique_name(enum config_unique u);
int config_unique_parse(const char *s, enum config_unique *out);
const char *config_catch_up_name(enum config_catch_up c);

/* The [job] section for a class, or NULL. */
const struct config_job *config_find_job(const struct config *c, const char *job_class);
/* A queue name forq accepts: letters, digits, '_', '-' and '.', not empty. */
bool config_queue_name_is_valid(const char *s);

/* Splits a command line into a NULL-terminated argv without a shell:
 * white space separates words; "..." and '...' quote; backslash escapes the
 * next character outside single quotes. NULL with err for an unterminated
 * quote or an empty command. Free with config_free_argv. */
char **config_split_argv(const char *cmd, char *err, size_t errlen);
void config_free_argv(char **argv);

/* Queue list in text form ("critical:3, default:1"), caller frees. */
char *config_queues_string(const struct config *c);

#endif
