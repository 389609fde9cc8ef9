/* sidekiq_yml: Sidekiq's own config/sidekiq.yml, read as Sidekiq 6.4's
 * CLI#parse_config reads it (keys with or without a leading ':', the
 * environment's section merged over the top level) and mapped onto [forq]
 * settings: concurrency -> processes, queues (with weights) -> queues,
 * timeout -> shutdown_timeout, tag, require, verbose. Other keys are not
 * forq's and are warned about, once each; ERB (<% %>) is refused, since
 * forq does not run Ruby to read its configuration. Parses strings, so it
 * is unit-tested without files; configload.c decides where it layers. */
#ifndef FORQ_SIDEKIQ_YML_H
#define FORQ_SIDEKIQ_YML_H

#include <stdbool.h>

#include "config.h"

/* where is "file:line"; msg says what was ignored. */
typedef void (*sidekiq_yml_warn_fn)(void *ctx, const char *where, const char *msg);

/* true when path ends in .yml or .yaml, or text (may be NULL) starts, after
 * blank and comment lines, with "---" or a ":key:". */
bool sidekiq_yml_is_yaml(const char *path, const char *text);

/* Sets in c the [forq] keys text maps to, reading the section named
 * environment (NULL: none) over the top level. name is used in positions.
 * 0, or -1 with err ("name:line", message). warn may be NULL. */
int sidekiq_yml_apply(struct config *c, const char *text, const char *name, const char *environment,
                      sidekiq_yml_warn_fn warn, void *ctx, struct config_error *err);

#endif
