/* plugin: dlopen, version check, init, hooks. The host table handed to a
 * plugin points back at its own record, so registrations are attributed to
 * the plugin that made them. */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "process.h"
#include "util.h"

#ifndef FORQ_PLUGINDIR
#define FORQ_PLUGINDIR "/usr/local/lib/forq"
#endif
#define RUBY_PLUGIN_NAME "libforq_ruby.so"

struct handler {
	char *job_class;
	forq_handler_fn fn;
	void *user;
};

struct daemon_entry {
	char *entry;
	forq_daemon_fn fn;
	void *user;
};

struct plugin {
	forq_host host; /* first, so a forq_host * is a struct plugin * */
	struct plugin_set *set;
	char *path;
	void *dl;
	forq_hook_fn before_fork, after_fork;
	forq_fini_fn fini;
	void *hook_user;
	forq_event_fn on_event;
	void *event_user;
};

struct plugin_set {
	struct plugin **plugins;
	size_t nplugins;
	struct handler *handlers;
	size_t nhandlers;
	struct daemon_entry *daemons;
	size_t ndaemons;
	int register_failed;
	int checkin_fd; /* in a daemon child with checkin_timeout, else -1 */
	bool owns_fork; /* one of ours set the process's fork function */
	bool has_failure;
	struct plugin_failure failure; /* what the running handler set */
	char **scripts; /* the non-.so require entries, NULL-terminated */
	size_t nscripts;
	char *redis_url, *environment, *redis_namespace;
};

static int host_register(forq_host *host, const char *job_class, forq_handler_fn fn, void *user)
{
	struct plugin *p = (struct plugin *)host;
	struct plugin_set *set = p->set;
	void *ignored;
	if (!job_class || !*job_class || !fn || plugin_set_find(set, job_class, false, &ignored)) {
		log_error("plugin registers a class twice or an empty one",
			  LF_STR("plugin", p->path), LF_STR("class", job_class ? job_class : ""));
		set->register_failed = 1;
		return FORQ_FAIL;
	}
	set->handlers = xrealloc(set->handlers, (set->nhandlers + 1) * sizeof(*set->handlers));
	set->handlers[set->nhandlers++] = (struct handler){xstrdup(job_class), fn, user};
	return FORQ_OK;
}

static int host_register_daemon(forq_host *host, const char *entry, forq_daemon_fn fn,
				void *user)
{
	struct plugin *p = (struct plugin *)host;
	struct plugin_set *set = p->set;
	void *ignored;
	if (!entry || !*entry || !fn || plugin_set_find_daemon(set, entry, &ignored)) {
		log_error("plugin registers a daemon entry twice or an empty one",
			  LF_STR("plugin", p->path), LF_STR("entry", entry ? entry : ""));
		set->register_failed = 1;
		return FORQ_FAIL;
	}
	set->daemons = xrealloc(set->daemons, (set->ndaemons + 1) * sizeof(*set->daemons));
	set->daemons[set->ndaemons++] = (struct daemon_entry){xstrdup(entry), fn, user};
	return FORQ_OK;
}

/* A full pipe means the master has plenty of unread check-ins: dropping this
 * one loses nothing. */
static void host_checkin(forq_host *host)
{
	struct plugin *p = (struct plugin *)host;
	int fd = p->set->checkin_fd;
	if (fd >= 0 && write(fd, ".", 1) < 0 && errno != EAGAIN && errno != EINTR)
		p->set->checkin_fd = -1; /* the master is gone */
}

static void host_set_failure(forq_host *host, const forq_failure *f)
{
	struct plugin_set *set = ((struct plugin *)host)->set;
	if (!f || f->size < offsetof(forq_failure, error_message))
		return;
	plugin_failure_free(&set->failure);
	set->failure.disposition = f->disposition >= FORQ_DISPOSE_DEFAULT &&
						   f->disposition <= FORQ_DISPOSE_DISCARD
					   ? f->disposition
					   : FORQ_DISPOSE_DEFAULT;
	set->failure.retry_in = f->retry_in > 0 ? f->retry_in : 0;
	set->failure.backtrace_json = f->backtrace_json ? xstrdup(f->backtrace_json) : NULL;
	if (f->size >= offsetof(forq_failure, error_message) + sizeof(f->error_message) &&
	    f->error_message)
		set->failure.error_message = xstrdup(f->error_message);
	set->has_failure = true;
}

static void host_set_event_hook(forq_host *host, forq_event_fn fn, void *user)
{
	struct plugin *p = (struct plugin *)host;
	p->on_event = fn;
	p->event_user = user;
}

static int host_set_fork(forq_host *host, forq_fork_fn fn, void *user)
{
	struct plugin *p = (struct plugin *)host;
	if (process_has_fork_fn() && !p->set->owns_fork) {
		log_error("a second plugin wants to provide fork", LF_STR("plugin", p->path));
		return FORQ_FAIL;
	}
	process_set_fork_fn(fn, user);
	p->set->owns_fork = fn != NULL;
	return FORQ_OK;
}

static void host_set_hooks(forq_host *host, forq_hook_fn before_fork, forq_hook_fn after_fork,
			   forq_fini_fn fini, void *user)
{
	struct plugin *p = (struct plugin *)host;
	p->before_fork = before_fork;
	p->after_fork = after_fork;
	p->fini = fini;
	p->hook_user = user;
}

static void host_log(forq_host *host, int level, const char *message)
{
	struct plugin *p = (struct plugin *)host;
	if (level < FORQ_LOG_DEBUG || level > FORQ_LOG_ERROR)
		level = FORQ_LOG_INFO;
	log_at((enum log_level)level, message, LF_STR("plugin", p->path));
}

static int plugin_open(struct plugin_set *set, const char *path, char *err, size_t n)
{
	struct plugin *p = xcalloc(1, sizeof(*p));
	const unsigned *version;
	int (*init)(forq_host *);

	p->set = set;
	p->path = xstrdup(path);
	p->host = (forq_host){.api_version = FORQ_API_VERSION,
			      .size = sizeof(forq_host),
			      .plugin_path = p->path,
			      .register_handler = host_register,
			      .set_hooks = host_set_hooks,
			      .log = host_log,
			      .register_daemon = host_register_daemon,
			      .checkin = host_checkin,
			      .set_failure = host_set_failure,
			      .set_event_hook = host_set_event_hook,
			      .set_fork = host_set_fork,
			      .scripts = (const char *const *)set->scripts,
			      .nscripts = set->nscripts,
			      .redis_url = set->redis_url,
			      .environment = set->environment,
			      .redis_namespace = set->redis_namespace};
	/* RTLD_NOW: a missing symbol is a configuration error now, not a
	 * crash in the middle of a job later. */
	if (!(p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
		util_seterr(err, n, "plugin %s: %s", path, dlerror());
		goto out_free;
	}
	version = dlsym(p->dl, "forq_plugin_api_version");
	init = (int (*)(forq_host *))dlsym(p->dl, "forq_plugin_init");
	if (!version || !init) {
		util_seterr(err, n, "plugin %s: not a forq plugin (needs FORQ_PLUGIN_API and "
			       "forq_plugin_init)", path);
		goto out_close;
	}
	if (*version != FORQ_API_VERSION) {
		util_seterr(err, n, "plugin %s: built for API version %u, this forq has %u", path,
		       *version, FORQ_API_VERSION);
		goto out_close;
	}
	set->plugins = xrealloc(set->plugins, (set->nplugins + 1) * sizeof(*set->plugins));
	set->plugins[set->nplugins++] = p;
	if (init(&p->host) != FORQ_OK || set->register_failed) {
		util_seterr(err, n, "plugin %s: initialisation failed", path);
		return -1; /* owned by the set now; plugin_set_free unloads it */
	}
	log_debug("plugin loaded", LF_STR("plugin", path));
	return 0;
out_close:
	dlclose(p->dl);
out_free:
	free(p->path);
	free(p);
	return -1;
}

bool plugin_is_shared_object(const char *path)
{
	size_t len = strlen(path);
	return (len > 3 && !strcmp(path + len - 3, ".so")) || strstr(path, ".so.");
}

const char *plugin_ruby_path(char *buf, size_t n)
{
	const char *env = getenv("FORQ_RUBY_PLUGIN");
	char exe[4096];
	ssize_t len;
	if (env && *env) {
		snprintf(buf, n, "%s", env);
		return buf;
	}
	/* Run from a build tree: the plugin was built beside the executable. */
	if ((len = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[len] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, n, "%s/plugins/ruby/%s", exe, RUBY_PLUGIN_NAME);
			if (!access(buf, R_OK))
				return buf;
		}
	}
	snprintf(buf, n, "%s/%s", FORQ_PLUGINDIR, RUBY_PLUGIN_NAME);
	return buf;
}

static void set_take_config(struct plugin_set *set, const struct config *cfg)
{
	set->scripts = xcalloc(cfg->nplugins + 1, sizeof(*set->scripts));
	for (size_t i = 0; i < cfg->nplugins; i++)
		if (!plugin_is_shared_object(cfg->plugins[i]))
			set->scripts[set->nscripts++] = xstrdup(cfg->plugins[i]);
	set->redis_url = xstrdup(cfg->redis_url ? cfg->redis_url : "");
	set->environment = cfg->environment && *cfg->environment ? xstrdup(cfg->environment)
								  : NULL;
	set->redis_namespace = cfg->namespace ? xstrdup(cfg->namespace) : NULL;
}

struct plugin_set *plugin_set_load(const struct config *cfg, char *err, size_t errlen)
{
	struct plugin_set *set = xcalloc(1, sizeof(*set));
	bool ruby_loaded = false;
	char ruby[4096];
	set->checkin_fd = -1;
	set_take_config(set, cfg);
	for (size_t i = 0; i < cfg->nplugins; i++) {
		const char *path = cfg->plugins[i];
		if (!plugin_is_shared_object(path)) {
			if (ruby_loaded)
				continue;
			ruby_loaded = true;
			path = plugin_ruby_path(ruby, sizeof(ruby));
		}
		if (plugin_open(set, path, err, errlen)) {
			plugin_set_free(set);
			return NULL;
		}
	}
	return set;
}

void plugin_set_free(struct plugin_set *set)
{
	if (!set)
		return;
	for (size_t i = set->nplugins; i-- > 0;) {
		struct plugin *p = set->plugins[i];
		if (p->fini)
			p->fini(p->hook_user);
		/* dlclose would unmap code a hook may still have registered with
		 * atexit; the process is about to exit, so leave it mapped. */
		free(p->path);
		free(p);
	}
	for (size_t i = 0; i < set->nhandlers; i++)
		free(set->handlers[i].job_class);
	free(set->handlers);
	for (size_t i = 0; i < set->ndaemons; i++)
		free(set->daemons[i].entry);
	free(set->daemons);
	free(set->plugins);
	if (set->owns_fork)
		process_set_fork_fn(NULL, NULL);
	plugin_failure_free(&set->failure);
	for (size_t i = 0; i < set->nscripts; i++)
		free(set->scripts[i]);
	free(set->scripts);
	free(set->redis_url);
	free(set->environment);
	free(set->redis_namespace);
	free(set);
}

static int run_hooks(struct plugin_set *set, int after, char *err, size_t n)
{
	for (size_t i = 0; set && i < set->nplugins; i++) {
		struct plugin *p = set->plugins[i];
		forq_hook_fn fn = after ? p->after_fork : p->before_fork;
		if (fn && fn(&p->host, p->hook_user) != FORQ_OK) {
			util_seterr(err, n, "plugin %s: %s hook failed", p->path,
			       after ? "after_fork" : "before_fork");
			return -1;
		}
	}
	return 0;
}

int plugin_set_before_fork(struct plugin_set *set, char *err, size_t errlen)
{
	return run_hooks(set, 0, err, errlen);
}

int plugin_set_after_fork(struct plugin_set *set, char *err, size_t errlen)
{
	return run_hooks(set, 1, err, errlen);
}

forq_handler_fn plugin_set_find(const struct plugin_set *set, const char *job_class,
				bool fallback, void **user)
{
	const struct handler *any = NULL;
	for (size_t i = 0; set && i < set->nhandlers; i++) {
		if (!strcmp(set->handlers[i].job_class, job_class)) {
			*user = set->handlers[i].user;
			return set->handlers[i].fn;
		}
		if (!strcmp(set->handlers[i].job_class, "*"))
			any = &set->handlers[i];
	}
	if (fallback && any) {
		*user = any->user;
		return any->fn;
	}
	return NULL;
}

void plugin_failure_free(struct plugin_failure *f)
{
	free(f->backtrace_json);
	free(f->error_message);
	memset(f, 0, sizeof(*f));
}

void plugin_set_failure_reset(struct plugin_set *set)
{
	if (set && set->has_failure) {
		plugin_failure_free(&set->failure);
		set->has_failure = false;
	}
}

bool plugin_set_take_failure(struct plugin_set *set, struct plugin_failure *out)
{
	if (!set || !set->has_failure)
		return false;
	*out = set->failure;
	memset(&set->failure, 0, sizeof(set->failure));
	set->has_failure = false;
	return true;
}

void plugin_set_event(struct plugin_set *set, int event)
{
	for (size_t i = 0; set && i < set->nplugins; i++) {
		struct plugin *p = set->plugins[i];
		if (p->on_event)
			p->on_event(&p->host, event, p->event_user);
	}
}

forq_daemon_fn plugin_set_find_daemon(const struct plugin_set *set, const char *entry,
				      void **user)
{
	for (size_t i = 0; set && i < set->ndaemons; i++)
		if (!strcmp(set->daemons[i].entry, entry)) {
			*user = set->daemons[i].user;
			return set->daemons[i].fn;
		}
	return NULL;
}

void plugin_set_checkin_fd(struct plugin_set *set, int fd)
{
	if (set)
		set->checkin_fd = fd;
}

size_t plugin_set_count(const struct plugin_set *set)
{
	return set ? set->nplugins : 0;
}
