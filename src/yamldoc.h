/* yamldoc: loads a YAML file's text into libyaml's document (aliases
 * resolved) for the readers of Sidekiq's and sidekiq-cron's files
 * (sidekiq_yml, schedule_yml), refusing ERB first: both files are ERB
 * templates to Ruby, and forq reads them as plain YAML. */
#ifndef FORQ_YAMLDOC_H
#define FORQ_YAMLDOC_H

#include <stddef.h>
#include <yaml.h>

#include "config.h"

/* 0 with *doc loaded (the caller deletes it), or -1 with err set to
 * "name:line" and the reason: the first line with "<%" (the message then
 * ends with erb_hint), or libyaml's problem and context. */
int yamldoc_load(yaml_document_t *doc, const char *text, size_t len, const char *name,
		 const char *erb_hint, struct config_error *err);

/* The 1-based line a node starts on, for messages. */
int yamldoc_line(const yaml_node_t *n);

#endif
