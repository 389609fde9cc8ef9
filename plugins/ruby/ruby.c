/*
 * ruby.c - forq's Ruby plugin: embeds the Ruby VM, loads the app named by
 * `-r app.rb` or `-r RAILS_ROOT` and runs its Sidekiq and ActiveJob classes
 * in-process. The job semantics live in forq.rb (embedded); this file owns
 * the VM's life: start, the fork protocol, Ruby's signal handlers in the
 * children, and the bridge of each job and daemon call.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ruby.h>

#include "forq.h"
#include "forq_rb.h"

FORQ_PLUGIN_API;

/* Signals whose Ruby handlers must be in place while Ruby code runs
 * (research/ruby-embedding.md): without them `system` and Process.wait hang
 * (CHLD), Thread#kill kills the process (VTALRM), deep recursion is a
 * SIGSEGV instead of SystemStackError (SEGV, BUS, ILL), and SYS is no-op. */
static const int ruby_signals[] = {SIGCHLD, SIGVTALRM, SIGSEGV, SIGBUS, SIGILL, SIGSYS};

/* Process-wide, as the VM itself is. */
static struct {
	forq_host *host;
	pid_t booted_pid; /* the process that started the VM */
	struct sigaction saved[sizeof(ruby_signals) / sizeof(ruby_signals[0])];
	long long daemon_token;
	VALUE mForq;
} rb;

static void say(int level, const char *msg)
{
	rb.host->log(rb.host, level, msg);
}

/* Logs an exception that escaped to C: "Class: message", then its backtrace. */
static VALUE describe_body(VALUE exc)
{
	return rb_funcall(rb.mForq, rb_intern("describe"), 1, exc);
}

static void log_exception(const char *what, VALUE exc)
{
	int state = 0;
	VALUE lines = rb.mForq ? rb_protect(describe_body, exc, &state) : Qnil;
	char buf[4096];
	if (state || !RB_TYPE_P(lines, T_ARRAY)) {
		rb_set_errinfo(Qnil);
		snprintf(buf, sizeof(buf), "%s: %s", what, rb_obj_classname(exc));
		say(FORQ_LOG_ERROR, buf);
		return;
	}
	for (long i = 0; i < RARRAY_LEN(lines); i++) {
		VALUE l = rb_ary_entry(lines, i);
		snprintf(buf, sizeof(buf), "%s%s%.*s", i ? "" : what, i ? "" : ": ",
		         (int)RSTRING_LEN(l), RSTRING_PTR(l));
		say(FORQ_LOG_ERROR, buf);
	}
}

/* Runs fn(arg) under rb_protect; on an exception logs it and returns Qundef. */
static VALUE guarded(VALUE (*fn)(VALUE), VALUE arg, const char *what)
{
	int state = 0;
	VALUE v = rb_protect(fn, arg, &state);
	if (state) {
		VALUE exc = rb_errinfo();
		rb_set_errinfo(Qnil);
		log_exception(what, exc);
		return Qundef;
	}
	return v;
}

/* ---- methods forq.rb calls ------------------------------------------- */

static VALUE forqrb_log(VALUE self, VALUE level, VALUE msg)
{
	(void)self;
	say(NUM2INT(level), StringValueCStr(msg));
	return Qnil;
}

static VALUE forqrb_checkin(VALUE self)
{
	(void)self;
	forq_checkin(rb.host);
	return Qnil;
}

static VALUE forqrb_daemon_token(VALUE self)
{
	(void)self;
	return LL2NUM(rb.daemon_token);
}

/* ---- start ------------------------------------------------------------- */

static VALUE eval_runtime(VALUE unused)
{
	(void)unused;
	/* Named, so backtraces point at forq.rb rather than "eval". */
	return rb_funcall(rb_mKernel, rb_intern("eval"), 4, rb_str_new_cstr(forq_rb_source), Qnil,
	                  rb_str_new_cstr("forq/plugins/ruby/forq.rb"), INT2FIX(1));
}

static VALUE boot_body(VALUE unused)
{
	VALUE scripts = rb_ary_new();
	(void)unused;
	for (size_t i = 0; i < rb.host->nscripts; i++)
		rb_ary_push(scripts, rb_str_new_cstr(rb.host->scripts[i]));
	const char *ns = FORQ_HOST_HAS(rb.host, redis_namespace) ? rb.host->redis_namespace : NULL;
	return rb_funcall(rb.mForq, rb_intern("boot"), 4, scripts,
	                  rb_str_new_cstr(rb.host->redis_url ? rb.host->redis_url : ""),
	                  rb.host->environment ? rb_str_new_cstr(rb.host->environment) : Qnil,
	                  ns ? rb_str_new_cstr(ns) : Qnil);
}

static int vm_start(void)
{
	static char arg0[] = "forq-ruby", arg1[] = "-e", arg2[] = "";
	char *args[] = {arg0, arg1, arg2, NULL};
	int argc = 3, state = 0;
	char **argv = args;

	ruby_sysinit(&argc, &argv);
	{
		RUBY_INIT_STACK;
		if (ruby_setup()) {
			say(FORQ_LOG_ERROR, "cannot start the Ruby VM");
			return -1;
		}
	}
	/* What `ruby -e ""` does: rubygems, RUBYOPT (bundle exec's
	 * -rbundler/setup), did_you_mean. The empty program is never run. */
	void *node = ruby_options(argc, argv);
	if (!ruby_executable_node(node, &state)) {
		say(FORQ_LOG_ERROR, "Ruby refused its options (RUBYOPT?)");
		return -1;
	}
	ruby_script("forq");
	for (size_t i = 0; i < sizeof(ruby_signals) / sizeof(ruby_signals[0]); i++)
		sigaction(ruby_signals[i], NULL, &rb.saved[i]);
	rb.booted_pid = getpid();
	return 0;
}

static int runtime_load(void)
{
	if (guarded(eval_runtime, Qnil, "forq.rb failed") == Qundef)
		return -1;
	rb.mForq = rb_const_get(rb_cObject, rb_intern("Forq"));
	rb_gc_register_address(&rb.mForq);
	rb_define_singleton_method(rb.mForq, "log", forqrb_log, 2);
	rb_define_singleton_method(rb.mForq, "checkin", forqrb_checkin, 0);
	rb_define_singleton_method(rb.mForq, "daemon_token", forqrb_daemon_token, 0);
	return 0;
}

/* ---- fork ---------------------------------------------------------------- */

static VALUE fork_body(VALUE unused)
{
	(void)unused;
	/* Process.fork, not a plain fork(): Ruby stops and restarts its timer,
	 * re-initialises its threads in the child, and runs the fork hooks
	 * Rails and gems install (ActiveSupport::ForkTracker, Process._fork). */
	return rb_funcall(rb_mProcess, rb_intern("fork"), 0);
}

static pid_t ruby_fork(void *user)
{
	pid_t parent = getpid();
	int state = 0;
	(void)user;
	VALUE v = rb_protect(fork_body, Qnil, &state);
	if (state) {
		VALUE exc = rb_errinfo();
		rb_set_errinfo(Qnil);
		if (getpid() != parent) {
			/* A fork hook of the app's raised in the child: it must not
			 * go on as a second master. Like a failed :startup, this is
			 * the app's configuration: not respawned. */
			log_exception("a fork hook raised in the new child", exc);
			_exit(78);
		}
		log_exception("Process.fork failed", exc);
		errno = EAGAIN;
		return -1;
	}
	return NIL_P(v) ? 0 : (pid_t)NUM2LONG(v);
}

static VALUE before_fork_body(VALUE unused)
{
	(void)unused;
	return rb_funcall(rb.mForq, rb_intern("before_fork"), 0);
}

/* The master's malloc heap, after the app loaded and the GC ran, is full
 * of free chunks between live data. A worker's allocations would reuse
 * them, and each such write copies a page it shares with the master: with a
 * Rails app a worker ended up with 16.8 MiB of that heap private after 20k
 * jobs. Taking those chunks here, for good, sends the workers' allocations
 * to fresh pages of their own instead (6.6 MiB); the chunks cost nothing
 * more, their pages are resident already and stay shared. glibc's main
 * arena only; never more than the free bytes it reported at the start. */
static size_t heap_fill_holes(void)
{
	size_t taken = 0;
#if defined(__GLIBC__)
	struct mallinfo2 start = mallinfo2();
	size_t holes = start.fordblks > start.keepcost ? start.fordblks - start.keepcost : 0;
	void *end = sbrk(0);
	for (size_t size = 64 * 1024; size >= 16 && taken < holes; size /= 2) {
		for (int misses = 0; misses < 8 && taken < holes;) {
			struct mallinfo2 mi = mallinfo2();
			char *top = (char *)end - mi.keepcost;
			char *p = malloc(size);
			if (!p)
				return taken;
			if (p >= top || (char *)sbrk(0) != (char *)end) {
				/* carved from the top: no free chunk of this size left */
				free(p);
				end = sbrk(0);
				misses++;
				continue;
			}
			taken += size; /* kept for the life of the process */
		}
	}
#endif
	return taken;
}

static int hook_before_fork(forq_host *host, void *user)
{
	(void)host;
	(void)user;
	rb_funcall(rb.mForq, rb_intern("booted_in_master!"), 0);
	if (guarded(before_fork_body, Qnil, "before fork") == Qundef)
		return FORQ_FAIL;
	const char *fill = getenv("FORQ_RUBY_HEAP_FILL");
	if (!fill || strcmp(fill, "0")) {
		char msg[160];
		snprintf(msg, sizeof(msg),
		         "took %zu KiB of free malloc chunks before fork, so workers "
		         "allocate on pages of their own",
		         heap_fill_holes() / 1024);
		say(FORQ_LOG_INFO, msg);
	}
	return FORQ_OK;
}

static VALUE after_fork_body(VALUE worker)
{
	return rb_funcall(rb.mForq, rb_intern("after_fork"), 1, worker);
}

/* In every child: forq reset every signal to its default; Ruby needs its
 * own handlers back before any Ruby code runs. */
static int hook_after_fork(forq_host *host, void *user)
{
	(void)host;
	(void)user;
	for (size_t i = 0; i < sizeof(ruby_signals) / sizeof(ruby_signals[0]); i++)
		sigaction(ruby_signals[i], &rb.saved[i], NULL);
	VALUE worker = getenv("FORQ_WORKER_INDEX") ? Qtrue : Qfalse;
	/* A VM started in this worker (--no-prefork) took SIGALRM, which forq
	 * leaves at its default so a plugin handler's timeout ends the worker. */
	if (worker == Qtrue)
		signal(SIGALRM, SIG_DFL);
	return guarded(after_fork_body, worker, "worker start (:startup)") == Qundef ? FORQ_FAIL
	                                                                             : FORQ_OK;
}

static VALUE event_body(VALUE name)
{
	return rb_funcall(rb.mForq, rb_intern_str(name), 0);
}

static void hook_event(forq_host *host, int event, void *user)
{
	(void)host;
	(void)user;
	const char *name = event == FORQ_EVENT_QUIET ? "quiet" : "shutdown";
	guarded(event_body, rb_str_new_cstr(name), name);
}

static void hook_fini(void *user)
{
	(void)user;
	/* Only the process that started the VM owns its stdio buffers. */
	if (rb.mForq && getpid() == rb.booted_pid)
		rb_protect(event_body, rb_str_new_cstr("flush_stdio"), NULL);
}

/* ---- jobs ------------------------------------------------------------------ */

static VALUE perform_body(VALUE arg)
{
	const forq_job *job = (const forq_job *)arg;
	return rb_funcall(rb.mForq, rb_intern("perform"), 2,
	                  rb_str_new(job->payload_json, (long)strlen(job->payload_json)),
	                  rb_str_new_cstr(job->queue));
}

static const char *str_or(VALUE v, const char *dflt)
{
	return RB_TYPE_P(v, T_STRING) ? StringValueCStr(v) : dflt;
}

struct failure_view {
	VALUE result;
	const char *cls;
	forq_failure f;
};

/* forq.rb returns nil, or [class, message, disposition, retry_in,
 * backtrace]. Read under rb_protect: a conversion may raise. */
static VALUE view_failure(VALUE arg)
{
	struct failure_view *v = (struct failure_view *)arg;
	VALUE r = v->result, msg = rb_ary_entry(r, 1), bt = rb_ary_entry(r, 4);
	if (RB_TYPE_P(msg, T_STRING) && memchr(RSTRING_PTR(msg), '\0', (size_t)RSTRING_LEN(msg)))
		msg = rb_funcall(msg, rb_intern("delete"), 1, rb_str_new("\0", 1));
	rb_ary_store(r, 1, msg); /* keeps the new string alive */
	v->cls = str_or(rb_ary_entry(r, 0), "RuntimeError");
	v->f.disposition = NUM2INT(rb_ary_entry(r, 2));
	v->f.retry_in = NUM2DBL(rb_ary_entry(r, 3));
	v->f.backtrace_json = NIL_P(bt) ? NULL : str_or(bt, NULL);
	v->f.error_message = str_or(msg, "");
	return Qnil;
}

static int report_failure(VALUE r, forq_error *err)
{
	struct failure_view v = {.result = r, .f = {.size = sizeof(forq_failure)}};
	int state = 0;
	rb_protect(view_failure, (VALUE)&v, &state);
	if (state) {
		rb_set_errinfo(Qnil);
		return forq_error_set(err, "Forq::RubyError",
		                      "the job's failure could not be read");
	}
	forq_error_set(err, v.cls, "%s", v.f.error_message);
	if (FORQ_HOST_HAS(rb.host, set_failure) && rb.host->set_failure)
		rb.host->set_failure(rb.host, &v.f);
	RB_GC_GUARD(r);
	return FORQ_FAIL;
}

static int handle_job(const forq_job *job, forq_error *err, void *user)
{
	int state = 0;
	(void)user;
	VALUE r = rb_protect(perform_body, (VALUE)job, &state);
	if (state) { /* forq.rb rescues everything; this is `throw` or a fatal */
		VALUE exc = rb_errinfo();
		rb_set_errinfo(Qnil);
		return forq_error_set(err, NIL_P(exc) ? "Forq::RubyError" : rb_obj_classname(exc),
		                      "the job escaped Ruby's rescue (state %d)", state);
	}
	if (NIL_P(r))
		return FORQ_OK;
	return report_failure(r, err);
}

/* ---- daemons ----------------------------------------------------------------- */

static VALUE daemon_body(VALUE arg)
{
	const forq_daemon *d = (const forq_daemon *)arg;
	return rb_funcall(rb.mForq, rb_intern("run_daemon"), 2, rb_str_new_cstr(d->target),
	                  rb_str_new_cstr(d->args_json ? d->args_json : "[]"));
}

static int run_daemon(const forq_daemon *d, void *user)
{
	char what[256];
	(void)user;
	if (d->size < sizeof(forq_daemon) || !d->target) {
		say(FORQ_LOG_ERROR, "ruby daemon without a class");
		return 78;
	}
	rb.daemon_token = d->token;
	snprintf(what, sizeof(what), "daemon %s (%s) raised", d->name, d->target);
	VALUE r = guarded(daemon_body, (VALUE)d, what);
	rb_protect(event_body, rb_str_new_cstr("flush_stdio"), NULL);
	return r == Qundef ? 1 : 0;
}

/* ---- init ---------------------------------------------------------------------- */

FORQ_EXPORT int forq_plugin_init(forq_host *host)
{
	rb.host = host;
	if (!FORQ_HOST_HAS(host, environment)) {
		host->log(host, FORQ_LOG_ERROR, "this forq is too old for the Ruby plugin");
		return FORQ_FAIL;
	}
	if (rb.booted_pid) {
		say(FORQ_LOG_ERROR, "the Ruby VM cannot be started twice in one process");
		return FORQ_FAIL;
	}
	if (vm_start() || runtime_load())
		return FORQ_FAIL;
	if (guarded(boot_body, Qnil, "the app failed to load") == Qundef)
		return FORQ_FAIL;
	if (host->register_handler(host, "*", handle_job, NULL) != FORQ_OK ||
	    host->register_daemon(host, "ruby", run_daemon, NULL) != FORQ_OK ||
	    host->set_fork(host, ruby_fork, NULL) != FORQ_OK)
		return FORQ_FAIL;
	host->set_hooks(host, hook_before_fork, hook_after_fork, hook_fini, NULL);
	host->set_event_hook(host, hook_event, NULL);
	return FORQ_OK;
}
