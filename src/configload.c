/* configload: the layers of a configuration, in one ordering (config.h,
 * config_load): defaults < sidekiq.yml < the INI file < environment
 * variables < command line. A sidekiq.yml named by the INI sits under it,
 * so the INI file is read twice: once to learn the yml's name, once over
 * the yml, which keeps "the INI's own keys win" without tracking which
 * keys it set. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "schedule_yml.h"
#include "sidekiq_yml.h"
#include "util.h"

static void yml_warn(void *ctx, const char *where, const char *msg)
{
	(void)ctx;
	log_warn("sidekiq.yml setting ignored", LF_STR("where", where), LF_STR("why", msg));
}

/* Sidekiq's CLI#set_environment: -e, else APP_ENV, RAILS_ENV, RACK_ENV,
 * else development; forq's own `environment =` stands where -e does. */
static const char *yml_environment(const struct config_override *ov, size_t nov,
                                   const char *ini_env)
{
	const char *env = NULL, *v;
	for (size_t i = 0; i < nov; i++)
		if (!strcmp(ov[i].key, "environment") && *ov[i].value)
			env = ov[i].value;
	if (env)
		return env;
	if (ini_env && *ini_env)
		return ini_env;
	if ((v = getenv("APP_ENV")) && *v)
		return v;
	if ((v = getenv("RAILS_ENV")) && *v)
		return v;
	if ((v = getenv("RACK_ENV")) && *v)
		return v;
	return "development";
}

static int yml_layer(struct config *c, const char *path, const char *text, const char *env,
                     struct config_error *err)
{
	char *own = NULL;
	int rc;
	if (!text && !(text = own = config_read_file(path, err)))
		return -1;
	rc = sidekiq_yml_apply(c, text, path, env, yml_warn, NULL, err);
	free(own);
	return rc;
}

/* The INI file at path (text), over the sidekiq.yml it names if any. */
static struct config *ini_layers(const char *path, const char *text,
                                 const struct config_override *ov, size_t nov,
                                 struct config_error *err)
{
	struct config *c = config_new(), *over;
	if (config_parse_string(c, text, path, err))
		goto out_free;
	if (!c->sidekiq_config)
		return c;
	over = config_new();
	if (yml_layer(over, c->sidekiq_config, NULL, yml_environment(ov, nov, c->environment),
	              err) ||
	    config_parse_string(over, text, path, err)) {
		config_free(over);
		goto out_free;
	}
	config_free(c);
	return over;
out_free:
	config_free(c);
	return NULL;
}

struct config *config_load(const char *path, const struct config_override *ov, size_t nov,
                           struct config_error *err)
{
	struct config *c = NULL;
	char *text = NULL;
	if (!path) {
		c = config_new();
	} else if (!(text = config_read_file(path, err))) {
		return NULL;
	} else if (sidekiq_yml_is_yaml(path, text)) {
		c = config_new();
		if (yml_layer(c, path, text, yml_environment(ov, nov, NULL), err))
			goto out_free;
	} else if (!(c = ini_layers(path, text, ov, nov, err))) {
		goto out_text;
	}
	if (path)
		c->path = xstrdup(path);
	for (size_t i = 0; i < nov; i++) {
		if (config_set(c, NULL, ov[i].key, ov[i].value, err->msg, sizeof(err->msg))) {
			snprintf(err->where, sizeof(err->where), "%s", ov[i].origin);
			goto out_free;
		}
	}
	/* Last: cron_schedule may come from the environment or command line. */
	if (c->cron_schedule && schedule_yml_load(c, c->cron_schedule, err))
		goto out_free;
	free(text);
	return c;
out_free:
	config_free(c);
out_text:
	free(text);
	return NULL;
}
