/* schedule_yml: sidekiq-cron's config/schedule.yml as forq cron entries
 * (cron_schedule = in [forq]). The file is read with libyaml; an entry is
 * converted as sidekiq-cron 1.8's Job.new reads it (cron with an optional
 * trailing zone, class or klass, queue, args in all its forms, description,
 * status, date_as_argument, active_job with its queue name prefix, message,
 * retry). What forq cannot honour the same way - ERB, natural-language
 * crons, Ruby-tagged values, unknown keys - is an error naming file:line.
 * Pure apart from reading the file. */
#ifndef FORQ_SCHEDULE_YML_H
#define FORQ_SCHEDULE_YML_H

#include <stddef.h>

#include "config.h"

/* Reads the schedule at path (relative to the directory of c->path, the
 * configuration file, when not absolute) and appends its entries to
 * c->crons. 0, or -1 with err naming "file:line" and no entry added. */
int schedule_yml_load(struct config *c, const char *path, struct config_error *err);

/* The same from text; name is the file name used in messages and kept as
 * each entry's source. */
int schedule_yml_parse_string(struct config *c, const char *text, size_t len, const char *name,
                              struct config_error *err);

#endif
