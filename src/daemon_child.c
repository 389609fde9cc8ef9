/* daemon_child: the environment of a daemon, then exec or the plugin's
 * entry point. An exec daemon finds its check-in pipe on fd 3 and nothing
 * else of ours; a plugin daemon checks in through the host. */
#include "daemon_child.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "process.h"
#include "proctitle.h"

#define DAEMON_CHECKIN_FD 3 /* where an exec daemon finds its check-in pipe */

static int daemon_child_run_plugin(const struct daemon_child *x)
{
	const struct config_daemon *c = x->section;
	struct plugin_set *own = NULL, *ps = x->plugins;
	char err[512];
	void *user = NULL;
	int rc = CONFIG_EXIT_CONFIG;

	if (!ps && !(ps = own = plugin_set_load(x->cfg, err, sizeof(err)))) {
		log_error("cannot load plugins", LF_STR("daemon", c->name), LF_STR("error", err));
		return rc;
	}
	forq_daemon_fn fn = plugin_set_find_daemon(ps, c->plugin, &user);
	if (!fn) {
		log_error("no plugin registered this daemon entry", LF_STR("daemon", c->name),
		          LF_STR("entry", c->plugin));
		goto out;
	}
	if (plugin_set_after_fork(ps, err, sizeof(err))) {
		log_error("cannot start daemon", LF_STR("daemon", c->name), LF_STR("error", err));
		goto out;
	}
	if (x->wfd >= 0)
		fcntl(x->wfd, F_SETFL, O_NONBLOCK); /* a check-in never blocks the daemon */
	plugin_set_checkin_fd(ps, x->wfd);
	forq_daemon info = {sizeof(info),
	                    c->name,
	                    c->plugin,
	                    x->scope,
	                    x->token,
	                    c->ruby,
	                    c->args ? c->args : "[]"};
	rc = fn(&info, user);
	rc = rc == FORQ_OK ? 0 : rc > 0 && rc < 256 ? rc : 1;
out:
	plugin_set_free(own);
	return rc;
}

static int daemon_child_run_exec(const struct daemon_child *x)
{
	const struct config_daemon *c = x->section;
	if (x->wfd >= 0) {
		if (x->wfd == DAEMON_CHECKIN_FD)
			fcntl(x->wfd, F_SETFD, 0);
		else if (dup2(x->wfd, DAEMON_CHECKIN_FD) < 0)
			return 127;
		setenv("FORQ_CHECKIN_FD", "3", 1);
	}
	closefrom(x->wfd >= 0 ? DAEMON_CHECKIN_FD + 1 : DAEMON_CHECKIN_FD);
	execvp(c->argv[0], c->argv);
	log_error("cannot run daemon", LF_STR("daemon", c->name), LF_STR("program", c->argv[0]),
	          LF_ERRNO());
	return 127;
}

int daemon_child_main(void *arg)
{
	const struct daemon_child *x = arg;
	const struct config_daemon *c = x->section;
	char num[32];

	/* Never outlive the master: a daemon orphaned while another node
	 * takes the lease would be a second instance. */
	process_die_with_parent(SIGKILL, x->master);
	if (x->rfd >= 0)
		close(x->rfd);
	x->forget(x->priv);
	log_set_role("daemon", -1);
	proctitle_set("forq: daemon[%s]", c->name);
	setenv("FORQ_DAEMON_NAME", c->name, 1);
	setenv("FORQ_DAEMON_SCOPE", x->scope, 1);
	if (x->token > 0) {
		snprintf(num, sizeof(num), "%lld", x->token);
		setenv("FORQ_DAEMON_TOKEN", num, 1);
	} else {
		unsetenv("FORQ_DAEMON_TOKEN");
	}
	if (x->wfd >= 0) {
		snprintf(num, sizeof(num), "%d", x->wfd);
		setenv("FORQ_CHECKIN_FD", num, 1);
	}
	if (x->cfg->environment)
		setenv("FORQ_ENV", x->cfg->environment, 1);
	process_unblock_signals();
	return c->plugin ? daemon_child_run_plugin(x) : daemon_child_run_exec(x);
}
