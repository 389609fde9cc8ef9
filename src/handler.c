/* handler: exec handlers get the payload on stdin, FORQ_* variables and
 * their own process group; their output is logged line by line with the
 * jid, and the tail of stderr becomes the error message. A plugin handler
 * with a timeout runs under an interval timer whose SIGALRM (default
 * action) ends the worker: the master records the job as failed. */
#include "handler.h"

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "process.h"
#include "util.h"

#define KILL_GRACE 3.0     /* seconds from TERM to KILL on timeout */
#define ABANDON_GRACE 2.0  /* seconds from TERM to KILL when abandoning */
#define OUTPUT_LINGER 0.2  /* seconds to drain pipes held open by grandchildren */
#define STDERR_TAIL 2000

struct stream {
	int fd;
	ev_io w;
	char line[4096];
	size_t len;
	const char *name;
};

struct run {
	struct ev_loop *loop;
	const struct job *job;
	pid_t pid;
	int status;
	bool exited, timed_out, abandoned;
	const char *payload;
	size_t payload_len, written;
	int in_fd;
	ev_io in_w;
	struct stream out, err;
	ev_signal chld_w;
	ev_timer timeout_w, kill_w, linger_w;
	char tail[STDERR_TAIL + 1]; /* last bytes of stderr */
	size_t tail_len;
};

static struct run *current; /* the one exec handler running, for abandon */

static void run_tail_add(struct run *r, const char *s, size_t n)
{
	if (n >= STDERR_TAIL) {
		s += n - STDERR_TAIL;
		n = STDERR_TAIL;
	}
	if (r->tail_len + n > STDERR_TAIL) {
		size_t drop = r->tail_len + n - STDERR_TAIL;
		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, s, n);
	r->tail_len += n;
	r->tail[r->tail_len] = '\0';
}

static void run_log_line(struct run *r, struct stream *s)
{
	s->line[s->len] = '\0';
	log_info("job output", LF_STR("jid", r->job->jid), LF_STR("class", r->job->job_class),
		 LF_STR("stream", s->name), LF_STR("line", s->line));
	if (s == &r->err) {
		run_tail_add(r, s->line, s->len);
		run_tail_add(r, "\n", 1);
	}
	s->len = 0;
}

static bool run_is_done(const struct run *r)
{
	return r->exited && r->out.fd < 0 && r->err.fd < 0;
}

static void stream_close(struct run *r, struct stream *s)
{
	if (s->fd < 0)
		return;
	if (s->len)
		run_log_line(r, s);
	ev_io_stop(r->loop, &s->w);
	close(s->fd);
	s->fd = -1;
	if (run_is_done(r))
		ev_break(r->loop, EVBREAK_ONE);
}

static void stream_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct run *r = w->data;
	struct stream *s = w == &r->out.w ? &r->out : &r->err;
	char buf[4096];
	(void)loop;
	(void)revents;
	ssize_t n = read(s->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		stream_close(r, s);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n' || s->len == sizeof(s->line) - 1)
			run_log_line(r, s);
		if (buf[i] != '\n')
			s->line[s->len++] = buf[i];
	}
}

static void run_close_stdin(struct run *r)
{
	if (r->in_fd < 0)
		return;
	ev_io_stop(r->loop, &r->in_w);
	close(r->in_fd);
	r->in_fd = -1;
}

static void stdin_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct run *r = w->data;
	(void)loop;
	(void)revents;
	ssize_t n = write(r->in_fd, r->payload + r->written, r->payload_len - r->written);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) { /* EPIPE: the handler does not read its stdin; that is its right */
		run_close_stdin(r);
		return;
	}
	r->written += (size_t)n;
	if (r->written == r->payload_len)
		run_close_stdin(r);
}

static void run_on_linger(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct run *r = t->data;
	(void)loop;
	(void)revents;
	/* A grandchild keeps the pipes open; the job itself is over. */
	stream_close(r, &r->out);
	stream_close(r, &r->err);
}

static void run_on_chld(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct run *r = w->data;
	int status;
	(void)revents;
	/* Only our child: the worker has no other children, and an orphan of
	 * the handler is reparented to the master (subreaper), not to us. */
	pid_t p = waitpid(r->pid, &status, WNOHANG);
	if (p != r->pid)
		return;
	r->exited = true;
	r->status = status;
	ev_timer_stop(loop, &r->timeout_w);
	ev_timer_stop(loop, &r->kill_w);
	/* A stopped job's leftovers (children that ignored TERM) go too. */
	if (r->timed_out || r->abandoned)
		process_signal_group(r->pid, SIGKILL);
	run_close_stdin(r);
	if (run_is_done(r)) {
		ev_break(loop, EVBREAK_ONE);
		return;
	}
	ev_timer_set(&r->linger_w, OUTPUT_LINGER, 0.0);
	ev_timer_start(loop, &r->linger_w);
}

static void run_on_kill(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct run *r = t->data;
	(void)loop;
	(void)revents;
	process_signal_group(r->pid, SIGKILL);
}

static void run_terminate(struct run *r, double grace)
{
	process_signal_group(r->pid, SIGTERM);
	ev_timer_stop(r->loop, &r->kill_w);
	ev_timer_set(&r->kill_w, grace, 0.0);
	ev_timer_start(r->loop, &r->kill_w);
}

static void run_on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct run *r = t->data;
	(void)loop;
	(void)revents;
	r->timed_out = true;
	log_warn("job timed out; stopping its process group", LF_STR("jid", r->job->jid),
		 LF_STR("class", r->job->job_class), LF_INT("handler", r->pid));
	run_terminate(r, KILL_GRACE);
}

void handler_abandon(void)
{
	if (!current || current->exited || current->abandoned)
		return;
	current->abandoned = true;
	log_warn("abandoning job", LF_STR("jid", current->job->jid),
		 LF_STR("class", current->job->job_class));
	run_terminate(current, ABANDON_GRACE);
}

static void stream_start(struct run *r, struct stream *s, int fd, const char *name)
{
	s->fd = fd;
	s->name = name;
	ev_io_init(&s->w, stream_on_read, fd, EV_READ);
	s->w.data = r;
	ev_io_start(r->loop, &s->w);
}

static void run_result(struct run *r, double timeout, struct handler_result *res)
{
	char how[64];
	if (r->abandoned) {
		res->status = HANDLER_ABANDONED;
		return;
	}
	if (!r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0) {
		res->status = HANDLER_OK;
		return;
	}
	res->status = HANDLER_FAILED;
	if (r->timed_out) {
		snprintf(res->error_class, sizeof(res->error_class), "Forq::Timeout");
		snprintf(res->error_message, sizeof(res->error_message),
			 "handler did not finish within %g s and was stopped", timeout);
		return;
	}
	if (WIFEXITED(r->status))
		snprintf(res->error_class, sizeof(res->error_class), "Forq::ExitStatus%d",
			 WEXITSTATUS(r->status));
	else
		snprintf(res->error_class, sizeof(res->error_class), "Forq::Signal%s",
			 sigabbrev_np(WTERMSIG(r->status)) ? sigabbrev_np(WTERMSIG(r->status))
							   : "Unknown");
	char *tail = util_trim(r->tail);
	if (*tail)
		snprintf(res->error_message, sizeof(res->error_message), "%s", tail);
	else
		snprintf(res->error_message, sizeof(res->error_message), "handler ended with %s",
			 process_describe_status(r->status, how, sizeof(how)));
}

static void run_exec(const struct handler_env *env, const struct config_job *cj,
		     const struct job *j, const char *queue, struct handler_result *res)
{
	struct run r = {.loop = env->loop, .job = j, .in_fd = -1};
	char *vars[5];
	int in_fd, out_fd, err_fd;

	vars[0] = xasprintf("FORQ_JID=%s", j->jid);
	vars[1] = xasprintf("FORQ_CLASS=%s", j->job_class);
	vars[2] = xasprintf("FORQ_QUEUE=%s", queue);
	/* -1 on the first run (the payload has no retry_count yet), as plugins see it. */
	vars[3] = xasprintf("FORQ_RETRY_COUNT=%d", j->has_retry_count ? j->retry_count : -1);
	vars[4] = NULL;
	r.pid = process_spawn_exec(cj->argv, vars, &in_fd, &out_fd, &err_fd);
	if (r.pid < 0) {
		res->status = HANDLER_FAILED;
		snprintf(res->error_class, sizeof(res->error_class), "Forq::SpawnError");
		snprintf(res->error_message, sizeof(res->error_message), "cannot start %s: %s",
			 cj->argv[0], strerror(errno));
		goto out;
	}
	*env->handler_pid = r.pid;
	r.payload = j->raw;
	r.payload_len = strlen(j->raw);
	r.in_fd = in_fd;
	ev_io_init(&r.in_w, stdin_on_write, in_fd, EV_WRITE);
	r.in_w.data = &r;
	ev_io_start(r.loop, &r.in_w);
	stream_start(&r, &r.out, out_fd, "stdout");
	stream_start(&r, &r.err, err_fd, "stderr");
	/* A runtime in this worker (Ruby) may own SIGCHLD between jobs; libev
	 * resets it to the default when the watcher stops, so put it back. */
	struct sigaction chld_before;
	sigaction(SIGCHLD, NULL, &chld_before);
	ev_signal_init(&r.chld_w, run_on_chld, SIGCHLD);
	r.chld_w.data = &r;
	ev_signal_start(r.loop, &r.chld_w);
	ev_timer_init(&r.timeout_w, run_on_timeout, cj->timeout, 0.0);
	r.timeout_w.data = &r;
	if (cj->timeout > 0)
		ev_timer_start(r.loop, &r.timeout_w);
	ev_timer_init(&r.kill_w, run_on_kill, 0.0, 0.0);
	r.kill_w.data = &r;
	ev_timer_init(&r.linger_w, run_on_linger, 0.0, 0.0);
	r.linger_w.data = &r;
	current = &r;
	run_on_chld(r.loop, &r.chld_w, 0); /* it may be gone already */
	while (!run_is_done(&r))
		ev_run(r.loop, 0);
	current = NULL;
	*env->handler_pid = 0;
	ev_signal_stop(r.loop, &r.chld_w);
	sigaction(SIGCHLD, &chld_before, NULL);
	ev_timer_stop(r.loop, &r.timeout_w);
	ev_timer_stop(r.loop, &r.kill_w);
	ev_timer_stop(r.loop, &r.linger_w);
	run_close_stdin(&r);
	run_result(&r, cj->timeout, res);
out:
	for (int i = 0; i < 4; i++)
		free(vars[i]);
}

/* A class's own handler wins over a catch-all ("*") in either set. */
static forq_handler_fn find_plugin(const struct handler_env *env, const char *cls, void **user,
				   struct plugin_set **from)
{
	for (int fallback = 0; fallback < 2; fallback++)
		for (int i = 0; i < 2; i++) {
			forq_handler_fn fn = plugin_set_find(env->plugins[i], cls, fallback, user);
			if (fn) {
				*from = env->plugins[i];
				return fn;
			}
		}
	return NULL;
}

void handler_result_free(struct handler_result *res)
{
	plugin_failure_free(&res->detail);
}

static void run_plugin(const struct handler_env *env, forq_handler_fn fn, void *user,
		       struct plugin_set *set, const struct config_job *cj,
		       const struct job *j, const char *queue, struct handler_result *res)
{
	forq_job fj = {sizeof(forq_job), j->job_class, j->jid, queue, j->args_json, j->raw,
		       j->has_retry_count ? j->retry_count : -1};
	forq_error fe = {"", ""};
	struct itimerval it = {{0, 0}, {0, 0}};
	if (cj && cj->timeout > 0) {
		it.it_value.tv_sec = (time_t)cj->timeout;
		it.it_value.tv_usec = (suseconds_t)((cj->timeout - (double)(time_t)cj->timeout) * 1e6);
		*env->timeout_armed = 1;
		setitimer(ITIMER_REAL, &it, NULL); /* SIGALRM's default action ends us */
	}
	plugin_set_failure_reset(set);
	int rc = fn(&fj, &fe, user);
	if (cj && cj->timeout > 0) {
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_REAL, &off, NULL);
		*env->timeout_armed = 0;
	}
	if (rc == FORQ_OK) {
		res->status = HANDLER_OK;
		plugin_set_failure_reset(set);
		return;
	}
	res->status = HANDLER_FAILED;
	plugin_set_take_failure(set, &res->detail);
	snprintf(res->error_class, sizeof(res->error_class), "%s",
		 fe.error_class[0] ? fe.error_class : "Forq::PluginError");
	snprintf(res->error_message, sizeof(res->error_message), "%s",
		 fe.error_message[0] ? fe.error_message : "handler returned FORQ_FAIL");
}

void handler_run(const struct handler_env *env, const struct job *j, const char *queue,
		 struct handler_result *res)
{
	const struct config_job *cj = config_find_job(env->cfg, j->job_class);
	struct plugin_set *from = NULL;
	forq_handler_fn fn;
	void *user = NULL;

	memset(res, 0, sizeof(*res));
	if (cj && cj->argv) {
		run_exec(env, cj, j, queue, res);
	} else if ((fn = find_plugin(env, j->job_class, &user, &from))) {
		run_plugin(env, fn, user, from, cj, j, queue, res);
	} else {
		res->status = HANDLER_FAILED;
		snprintf(res->error_class, sizeof(res->error_class), "UnknownJobClass");
		snprintf(res->error_message, sizeof(res->error_message),
			 "no handler for class %s: add a [job \"%s\"] section with exec = ... "
			 "or load a plugin that registers it",
			 j->job_class, j->job_class);
	}
}
