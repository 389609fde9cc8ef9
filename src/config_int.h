/* config_int: what config.c ([forq], reading the file) and
 * config_sections.c ([job], [cron], [daemon]) share. */
#ifndef FORQ_CONFIG_INT_H
#define FORQ_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Splits a comma/blank separated list, calling fn for each item. */
int config_split_list(const char *v, int (*fn)(void *ctx, const char *item, char *err, size_t n),
		      void *ctx, char *err, size_t n);
/* A [job|cron|daemon NAME] name: what keys and logs can carry. */
bool config_entry_name_is_valid(const char *s);

/* One key of a named section; 0, or -1 with a message. */
int config_job_set(struct config_job *j, const char *key, const char *v, char *err, size_t n);
int config_cron_set(struct config_cron *e, const char *key, const char *v, char *err, size_t n);
int config_daemon_set(struct config_daemon *d, const char *key, const char *v, char *err,
		      size_t n);
/* A finished section's entry as a whole: required keys, combinations. */
int config_cron_check(const struct config_cron *e, char *err, size_t n);
int config_daemon_check(const struct config_daemon *d, char *err, size_t n);

#endif
