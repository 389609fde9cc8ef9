/* plugin: loads plugin shared objects (include/forq.h), runs their hooks and
 * keeps the class -> handler table used by workers and the entry -> daemon
 * table used by daemon children. */
#ifndef FORQ_PLUGIN_H
#define FORQ_PLUGIN_H

#include <stddef.h>

#include "forq.h"

struct plugin_set;

/* Loads and initialises every path in order. Returns a set the caller frees
 * with plugin_set_free, or NULL with a message in err (exit 78 material). */
struct plugin_set *plugin_set_load(char *const *paths, size_t n, char *err, size_t errlen);
/* Runs the fini hooks and dlcloses; NULL is fine. */
void plugin_set_free(struct plugin_set *set);

/* Hooks in load order; -1 with err filled when one returns FORQ_FAIL. */
int plugin_set_before_fork(struct plugin_set *set, char *err, size_t errlen);
int plugin_set_after_fork(struct plugin_set *set, char *err, size_t errlen);

/* The handler registered for a class, or NULL. */
forq_handler_fn plugin_set_find(const struct plugin_set *set, const char *job_class,
				void **user);
/* The daemon entry point registered as entry, or NULL. */
forq_daemon_fn plugin_set_find_daemon(const struct plugin_set *set, const char *entry,
				      void **user);
/* In a daemon child: where forq_checkin() writes (-1 = nowhere). */
void plugin_set_checkin_fd(struct plugin_set *set, int fd);
size_t plugin_set_count(const struct plugin_set *set);

#endif
