/* daemon_set: the daemon records (one per [daemon] section, with their own
 * copy of the section) and the set API of daemon.h: start, quiet, stop,
 * reap, HUP reconfiguration, dump. Separate from daemon.c (the child) and
 * daemon_lease.c (the lease), which do the work a record asks for. */
#include "daemon.h"

#include <ev.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "daemon_int.h"
#include "keys.h"
#include "log.h"
#include "plugin.h"
#include "util.h"

/* ---- section copies ------------------------------------------------- */

static char **argv_dup(char *const *argv)
{
	size_t n = 0;
	while (argv && argv[n])
		n++;
	if (!argv)
		return NULL;
	char **out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(argv[i]);
	return out;
}

static void section_copy(struct config_daemon *dst, const struct config_daemon *src)
{
	*dst = *src;
	dst->name = xstrdup(src->name);
	dst->argv = argv_dup(src->argv);
	dst->plugin = src->plugin ? xstrdup(src->plugin) : NULL;
	dst->ruby = src->ruby ? xstrdup(src->ruby) : NULL;
	dst->args = src->args ? xstrdup(src->args) : NULL;
}

void daemon_section_clear(struct config_daemon *c)
{
	free(c->name);
	config_free_argv(c->argv);
	free(c->plugin);
	free(c->ruby);
	free(c->args);
}

static bool section_equal(const struct config_daemon *a, const struct config_daemon *b)
{
	size_t i = 0;
	if (a->scope != b->scope || a->checkin_timeout != b->checkin_timeout ||
	    a->stop_timeout != b->stop_timeout || !a->plugin != !b->plugin || !a->argv != !b->argv)
		return false;
	if (a->plugin && strcmp(a->plugin, b->plugin))
		return false;
	if (!a->ruby != !b->ruby || (a->ruby && strcmp(a->ruby, b->ruby)) ||
	    strcmp(a->args ? a->args : "[]", b->args ? b->args : "[]"))
		return false;
	for (; a->argv && a->argv[i] && b->argv[i]; i++)
		if (strcmp(a->argv[i], b->argv[i]))
			return false;
	return !a->argv || (!a->argv[i] && !b->argv[i]);
}

/* ---- records ---------------------------------------------------------- */

void daemon_destroy(struct daemon *d)
{
	struct ev_loop *loop = d->set->loop;
	ev_timer_stop(loop, &d->lease_w);
	ev_timer_stop(loop, &d->fence_w);
	ev_timer_stop(loop, &d->child_w);
	ev_timer_stop(loop, &d->checkin_w);
	if (d->checkin_fd >= 0) {
		ev_io_stop(loop, &d->checkin_io);
		close(d->checkin_fd);
	}
	if (d->pending) {
		daemon_section_clear(d->pending);
		free(d->pending);
	}
	daemon_section_clear(&d->cfg);
	free(d->key);
	free(d->epoch_key);
	free(d->cooldown_key);
	free(d->runid_key);
	free(d->settle_key);
	free(d);
}

/* Takes d off the list; it is freed now or by its last due callback. */
void daemon_remove(struct daemon *d)
{
	for (struct daemon **p = &d->set->list; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	d->removed = true;
	if (!d->calls)
		daemon_destroy(d);
}

/* ---- the set ------------------------------------------------------------ */

static struct daemon *daemon_new(struct daemon_set *set, const struct config_daemon *c)
{
	struct daemon *d = xcalloc(1, sizeof(*d));
	d->set = set;
	section_copy(&d->cfg, c);
	d->key = keys_daemon(c->name);
	d->epoch_key = keys_daemon_epoch(c->name);
	d->cooldown_key = keys_daemon_cooldown(c->name, set->identity);
	d->runid_key = keys_daemon_runid(c->name);
	d->settle_key = keys_daemon_settle(c->name);
	d->checkin_fd = -1;
	ev_timer_init(&d->lease_w, daemon_on_lease_timer, 0.0, 0.0);
	ev_timer_init(&d->fence_w, daemon_on_fence, 0.0, 0.0);
	ev_timer_init(&d->child_w, daemon_on_child_timer, 0.0, 0.0);
	ev_timer_init(&d->checkin_w, daemon_on_checkin_timeout, 0.0, 0.0);
	d->lease_w.data = d->fence_w.data = d->child_w.data = d->checkin_w.data = d;
	d->next = set->list;
	set->list = d;
	return d;
}

struct daemon_set *daemon_set_new(struct ev_loop *loop, struct rds_async *rds, const char *identity,
                                  const struct config *cfg, struct plugin_set *plugins,
                                  daemon_forget_fn forget, void *priv)
{
	struct daemon_set *set = xcalloc(1, sizeof(*set));
	set->loop = loop;
	set->rds = rds;
	set->identity = xstrdup(identity);
	set->cfg = cfg;
	set->plugins = plugins;
	set->forget = forget;
	set->priv = priv;
	for (size_t i = 0; i < cfg->ndaemons; i++)
		daemon_new(set, &cfg->daemons[i]);
	return set;
}

void daemon_set_free(struct daemon_set *set)
{
	if (!set)
		return;
	while (set->list) {
		struct daemon *d = set->list;
		set->list = d->next;
		daemon_destroy(d);
	}
	free(set->identity);
	free(set);
}

static bool has_script(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nplugins; i++)
		if (!plugin_is_shared_object(cfg->plugins[i]))
			return true;
	return false;
}

int daemon_set_check(const struct config *cfg, bool loaded, const struct plugin_set *plugins,
		     char *err, size_t errlen)
{
	const char *path = cfg->path ? cfg->path : "(config)";
	void *user;
	for (size_t i = 0; i < cfg->ndaemons; i++) {
		const struct config_daemon *c = &cfg->daemons[i];
		if (c->ruby && !has_script(cfg)) {
			util_seterr(err, errlen,
				    "%s:%d: [daemon \"%s\"]: ruby = %s needs a Ruby app: "
				    "-r app.rb or -r RAILS_ROOT",
				    path, c->line, c->name, c->ruby);
			return -1;
		}
		if (loaded && c->plugin && !plugin_set_find_daemon(plugins, c->plugin, &user)) {
			util_seterr(
			    err, errlen,
			    "%s:%d: [daemon \"%s\"]: no plugin registered the daemon entry '%s'",
			    path, c->line, c->name, c->plugin);
			return -1;
		}
	}
	return 0;
}

void daemon_set_start(struct daemon_set *set)
{
	set->mode = MODE_RUNNING;
	for (struct daemon *d = set->list; d; d = d->next)
		daemon_begin(d);
}

void daemon_set_quiet(struct daemon_set *set)
{
	if (set->mode != MODE_RUNNING)
		return;
	set->mode = MODE_QUIET;
	for (struct daemon *d = set->list; d; d = d->next)
		if (daemon_is_cluster(d))
			daemon_wind_down(d, NEXT_OFF, "quiet");
}

void daemon_set_stop(struct daemon_set *set)
{
	struct daemon *next;
	set->mode = MODE_STOPPING;
	for (struct daemon *d = set->list; d; d = next) {
		next = d->next;
		daemon_wind_down(d, NEXT_OFF, "stop");
	}
}

void daemon_set_kill(struct daemon_set *set)
{
	for (struct daemon *d = set->list; d; d = d->next)
		if (d->pid > 0) {
			log_warn("killing daemon", LF_STR("daemon", d->cfg.name),
			         LF_INT("child", d->pid));
			daemon_signal(d, SIGKILL);
		}
}

bool daemon_set_is_idle(const struct daemon_set *set)
{
	for (const struct daemon *d = set->list; d; d = d->next)
		if (d->pid > 0)
			return false;
	return true;
}

bool daemon_set_reap(struct daemon_set *set, pid_t pid, int status)
{
	for (struct daemon *d = set->list; d; d = d->next)
		if (d->pid == pid) {
			daemon_exited(d, status);
			return true;
		}
	return false;
}

static const struct config_daemon *find_section(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ndaemons; i++)
		if (!strcmp(cfg->daemons[i].name, name))
			return &cfg->daemons[i];
	return NULL;
}

static void daemon_change(struct daemon *d, const struct config_daemon *c)
{
	if (d->pending) {
		daemon_section_clear(d->pending);
		free(d->pending);
	}
	d->pending = xcalloc(1, sizeof(*d->pending));
	section_copy(d->pending, c);
	if (d->pid > 0) {
		daemon_stop_child(d, NEXT_RESTART, d->cfg.stop_timeout, "configuration changed");
		return;
	}
	daemon_apply_pending(d);
	if (d->state == DS_WAITING && !daemon_is_cluster(d)) {
		ev_timer_stop(d->set->loop, &d->lease_w);
		d->state = DS_OFF;
		daemon_begin(d);
	} else if (d->state == DS_OFF) {
		daemon_begin(d);
	}
}

void daemon_set_reconfigure(struct daemon_set *set, const struct config *cfg)
{
	struct daemon *next;
	set->cfg = cfg;
	for (struct daemon *d = set->list; d; d = next) {
		const struct config_daemon *c = find_section(cfg, d->cfg.name);
		next = d->next;
		if (!c) {
			log_info("daemon removed from the configuration",
			         LF_STR("daemon", d->cfg.name));
			daemon_wind_down(d, NEXT_REMOVE, "removed");
		} else if (d->state == DS_STOPPING && d->after == NEXT_REMOVE) {
			/* back before its removal was over: it restarts instead */
			log_info("daemon back in the configuration", LF_STR("daemon", d->cfg.name));
			d->after = NEXT_RESTART;
			if (!section_equal(&d->cfg, c)) {
				if (d->pending) {
					daemon_section_clear(d->pending);
					free(d->pending);
				}
				d->pending = xcalloc(1, sizeof(*d->pending));
				section_copy(d->pending, c);
			}
		} else if (!section_equal(&d->cfg, c) ||
		           (d->pending && !section_equal(d->pending, c))) {
			log_info("daemon configuration changed", LF_STR("daemon", d->cfg.name));
			daemon_change(d, c);
		}
	}
	for (size_t i = 0; i < cfg->ndaemons; i++) {
		bool known = false;
		for (struct daemon *d = set->list; d; d = d->next)
			known |= !strcmp(d->cfg.name, cfg->daemons[i].name);
		if (!known) {
			log_info("daemon added to the configuration",
			         LF_STR("daemon", cfg->daemons[i].name));
			daemon_begin(daemon_new(set, &cfg->daemons[i]));
		}
	}
}

void daemon_set_dump(const struct daemon_set *set)
{
	static const char *const names[] = {"off", "waiting", "running", "stopping", "backoff"};
	double now = util_now_mono();
	for (const struct daemon *d = set->list; d; d = d->next)
		log_info("daemon", LF_STR("daemon", d->cfg.name),
		         LF_STR("scope", daemon_scope_name(&d->cfg)),
		         LF_STR("state", d->cooling && d->state == DS_WAITING ? "cooldown"
		                                                              : names[d->state]),
		         LF_INT("child", d->pid), LF_INT("token", d->token),
		         LF_INT("restarts", d->restarts),
		         LF_DBL("uptime", d->pid > 0 ? now - d->started : 0.0));
}

void daemon_set_close_fds(struct daemon_set *set)
{
	for (struct daemon *d = set->list; d; d = d->next)
		if (d->checkin_fd >= 0)
			close(d->checkin_fd);
}

void daemon_set_each(const struct daemon_set *set, daemon_each_fn fn, void *priv)
{
	for (const struct daemon *d = set->list; d; d = d->next)
		fn(priv, d->cfg.name, d->state == DS_RUNNING && d->pid > 0);
}
