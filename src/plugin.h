/* plugin: loads plugin shared objects (include/forq.h), runs their hooks and
 * keeps the class -> handler table used by workers and the entry -> daemon
 * table used by daemon children. */
#ifndef FORQ_PLUGIN_H
#define FORQ_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "forq.h"

struct plugin_set;

/* What a handler reported with host->set_failure (see forq_failure). */
struct plugin_failure {
	int disposition;  /* enum forq_disposition */
	double retry_in;
	char *backtrace_json; /* owned; NULL when none */
	char *error_message;  /* owned; NULL when none */
};

/* Loads and initialises cfg->plugins in order: a shared object (a name
 * ending in .so or containing .so.) is a C plugin; anything else (a .rb
 * file, a Rails root) is a script for the Ruby plugin, which is loaded
 * once, where the first script stands, and found without being named
 * (plugin_ruby_path). Returns a set the caller frees with plugin_set_free,
 * or NULL with a message in err (exit 78 material). */
struct plugin_set *plugin_set_load(const struct config *cfg, char *err, size_t errlen);
/* The Ruby plugin this forq uses: $FORQ_RUBY_PLUGIN, else the build tree
 * beside the executable, else the install directory. Never NULL. */
const char *plugin_ruby_path(char *buf, size_t n);
/* true when a require entry names a shared object (a C plugin). */
bool plugin_is_shared_object(const char *path);
/* Runs the fini hooks and dlcloses; NULL is fine. */
void plugin_set_free(struct plugin_set *set);

/* Hooks in load order; -1 with err filled when one returns FORQ_FAIL. */
int plugin_set_before_fork(struct plugin_set *set, char *err, size_t errlen);
int plugin_set_after_fork(struct plugin_set *set, char *err, size_t errlen);

/* The handler registered for a class, else the catch-all "*" one when
 * fallback is true, else NULL. */
forq_handler_fn plugin_set_find(const struct plugin_set *set, const char *job_class,
				bool fallback, void **user);
/* Around a handler call: forget any earlier failure detail; afterwards take
 * what the handler set (false when nothing; free with plugin_failure_free). */
void plugin_set_failure_reset(struct plugin_set *set);
bool plugin_set_take_failure(struct plugin_set *set, struct plugin_failure *out);
void plugin_failure_free(struct plugin_failure *f);
/* Calls every event hook (FORQ_EVENT_*) in load order; NULL is fine. */
void plugin_set_event(struct plugin_set *set, int event);
/* The daemon entry point registered as entry, or NULL. */
forq_daemon_fn plugin_set_find_daemon(const struct plugin_set *set, const char *entry,
				      void **user);
/* In a daemon child: where forq_checkin() writes (-1 = nowhere). */
void plugin_set_checkin_fd(struct plugin_set *set, int fd);
size_t plugin_set_count(const struct plugin_set *set);

#endif
