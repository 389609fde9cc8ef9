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

/* A [job "Class"] section: how forq runs jobs of that class. */
struct config_job {
	char *name;       /* the Sidekiq class */
	char **argv;      /* exec = ... split without a shell; NULL-terminated, or NULL */
	double timeout;   /* seconds; 0 = no limit */
	int retry;        /* default retry limit for payloads with "retry": true; -1 = 25 */
};

struct config {
	char *path; /* file it was read from, NULL when none */
	char *redis_url;
	int processes;       /* resolved worker count (>= 1) */
	bool processes_auto; /* "auto": count usable CPUs at start and on HUP */
	bool prefork;
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
	double node_dead_after; /* seconds without a node heartbeat before a sweep may act */
	double sweep_interval;  /* seconds between orphan-sweep rounds */
	double leader_ttl;      /* seconds a leader lease lasts unrenewed */
	double leader_renew;    /* seconds between a leader's renewals */
	struct config_job *jobs;
	size_t njobs;
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

/* Builds a config: defaults, then the file (if path), then each override in
 * order. Returns a config the caller frees, or NULL with err filled. */
struct config *config_load(const char *path, const struct config_override *ov, size_t nov,
			   struct config_error *err);

/* The [job] section for a class, or NULL. */
const struct config_job *config_find_job(const struct config *c, const char *job_class);

/* Splits a command line into a NULL-terminated argv without a shell:
 * white space separates words; "..." and '...' quote; backslash escapes the
 * next character outside single quotes. NULL with err for an unterminated
 * quote or an empty command. Free with config_free_argv. */
char **config_split_argv(const char *cmd, char *err, size_t errlen);
void config_free_argv(char **argv);

/* Queue list in text form ("critical:3, default:1"), caller frees. */
char *config_queues_string(const struct config *c);

#endif
