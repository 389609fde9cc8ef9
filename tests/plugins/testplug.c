/* testplug: a plugin whose misbehaviour is chosen by environment variables,
 * so integration tests can make real workers crash at start, ignore TERM,
 * leave orphans or hold a large table, exactly as a faulty plugin would.
 *
 *   FORQ_TEST_TABLE_MB=N        build and touch an N MiB table at init
 *   FORQ_TEST_EXIT_SLOTS=1,2|all  those workers exit at start ...
 *   FORQ_TEST_EXIT_CODE=N       ... with status N (default 1)
 *   FORQ_TEST_IGNORE_TERM=0,..  those workers ignore SIGTERM
 *   FORQ_TEST_ORPHAN=1          every worker leaves a grandchild orphan that
 *                               exits 300 ms later (for reaping tests)
 *   FORQ_TEST_STAMP_DIR=DIR     after_fork writes DIR/<slot>.<pid> holding
 *                               CLOCK_REALTIME in ns (respawn latency)
 *   FORQ_TEST_HOOK_LOG=1        log each hook call through the host
 *   FORQ_TEST_LATENCY_FILE=F    TestJob appends "now - enqueued_at" (s) to F
 *   FORQ_TEST_RECORD_DIR=DIR    TestJob with "record" in its args appends its
 *                               jid as a line to DIR/runs.<pid>, then sleeps
 *                               FORQ_TEST_RECORD_MS milliseconds
 *   FORQ_TEST_GROW_MB=N         TestJob with "grow" in its args allocates and
 *                               touches N MiB more and keeps it (a leaking job,
 *                               for recycling by max_rss)
 *   FORQ_TEST_NAP_MS=N          TestJob with "nap" in its args sleeps N ms
 *                               (a slow job the Busy page can show)
 *   FORQ_TEST_DAEMON_FILE=F     the daemon entry "testdaemon" appends
 *                               "start <name> <scope> <token> <pid>" to F, then
 *                               checks in every 0.2 s through the host, adding
 *                               "checkin <pid>" each time, until TERM kills it
 */
#include <forq.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

FORQ_PLUGIN_API;

static unsigned char *table;
static int rec_fd = -1; /* record_run's file, per worker */
static size_t table_len;
static unsigned char *grown[256]; /* grow_run's blocks, kept until fini */
static size_t ngrown;

static int slot_listed(const char *var)
{
	const char *list = getenv(var), *me = getenv("FORQ_WORKER_INDEX");
	char buf[256], *save = NULL;
	if (!list || !me)
		return 0;
	if (!strcmp(list, "all"))
		return 1;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (!strcmp(t, me))
			return 1;
	return 0;
}

static void stamp(void)
{
	const char *dir = getenv("FORQ_TEST_STAMP_DIR");
	struct timespec ts;
	char path[512], line[64];
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s.%ld", dir, getenv("FORQ_WORKER_INDEX"),
		 (long)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	int n = snprintf(line, sizeof(line), "%lld\n",
			 (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if (write(fd, line, (size_t)n) != n)
		perror("testplug: stamp");
	close(fd);
}

static void leave_orphan(void)
{
	pid_t child = fork();
	if (child == 0) {
		if (fork() == 0) {
			usleep(300000);
			_exit(0);
		}
		_exit(0); /* the grandchild is now an orphan */
	}
	if (child > 0)
		waitpid(child, NULL, 0);
}

static int before_fork(forq_host *host, void *user)
{
	(void)user;
	if (getenv("FORQ_TEST_HOOK_LOG"))
		host->log(host, FORQ_LOG_INFO, "testplug before_fork");
	return FORQ_OK;
}

static int after_fork(forq_host *host, void *user)
{
	(void)user;
	stamp();
	if (getenv("FORQ_TEST_HOOK_LOG"))
		host->log(host, FORQ_LOG_INFO, "testplug after_fork");
	if (slot_listed("FORQ_TEST_EXIT_SLOTS")) {
		const char *code = getenv("FORQ_TEST_EXIT_CODE");
		_exit(code ? atoi(code) : 1);
	}
	if (slot_listed("FORQ_TEST_IGNORE_TERM"))
		signal(SIGTERM, SIG_IGN);
	if (getenv("FORQ_TEST_ORPHAN"))
		leave_orphan();
	return FORQ_OK;
}

static void fini(void *user)
{
	(void)user;
	if (rec_fd >= 0)
		close(rec_fd);
	rec_fd = -1;
	free(table);
	table = NULL;
	while (ngrown)
		free(grown[--ngrown]);
}

/* The chaos test's record of runs, in files rather than in the Redis
 * under test, which the test makes answer errors and stall: one write of
 * one line before the job is considered done. */
static void record_run(const forq_job *job)
{
	const char *dir = getenv("FORQ_TEST_RECORD_DIR"), *ms = getenv("FORQ_TEST_RECORD_MS");
	char line[160];
	if (dir && rec_fd < 0) {
		snprintf(line, sizeof(line), "%s/runs.%ld", dir, (long)getpid());
		rec_fd = open(line, O_WRONLY | O_CREAT | O_APPEND, 0644);
	}
	int n = snprintf(line, sizeof(line), "%s\n", job->jid);
	if (rec_fd >= 0 && write(rec_fd, line, (size_t)n) != n)
		perror("testplug: record");
	if (ms)
		usleep((useconds_t)atoi(ms) * 1000);
}

/* Enqueue-to-start latency: the payload's enqueued_at against now. */
static void record_latency(const forq_job *job)
{
	const char *path = getenv("FORQ_TEST_LATENCY_FILE");
	const char *at = job->payload_json ? strstr(job->payload_json, "\"enqueued_at\":") : NULL;
	struct timespec ts;
	if (!path || !at)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	double enq = strtod(at + strlen("\"enqueued_at\":"), NULL);
	FILE *f = fopen(path, "a");
	if (f) {
		fprintf(f, "%.6f\n", now - enq);
		fclose(f);
	}
}

/* Real resident memory: every page written, none freed until exit. */
static void grow_run(void)
{
	const char *mb = getenv("FORQ_TEST_GROW_MB");
	size_t len = mb ? (size_t)atoi(mb) << 20 : 0;
	if (!len || ngrown == sizeof(grown) / sizeof(grown[0]) || !(grown[ngrown] = malloc(len)))
		return;
	memset(grown[ngrown++], 0x5a, len);
}

static int echo_run(const forq_job *job, forq_error *err, void *user)
{
	(void)user;
	if (job->args_json && strstr(job->args_json, "grow"))
		grow_run();
	record_latency(job);
	if (job->args_json && strstr(job->args_json, "record"))
		record_run(job);
	if (job->args_json && strstr(job->args_json, "segv"))
		raise(SIGSEGV); /* a handler crash takes its worker down */
	if (job->args_json && strstr(job->args_json, "sleep"))
		sleep(3600); /* for plugin timeouts */
	if (job->args_json && strstr(job->args_json, "nap") && getenv("FORQ_TEST_NAP_MS"))
		usleep((useconds_t)atoi(getenv("FORQ_TEST_NAP_MS")) * 1000);
	if (job->args_json && strstr(job->args_json, "fail"))
		return forq_error_set(err, "TestFailure", "asked to fail: %s", job->args_json);
	return FORQ_OK;
}

static int test_daemon(const forq_daemon *d, void *user)
{
	forq_host *host = user;
	const char *path = getenv("FORQ_TEST_DAEMON_FILE");
	FILE *f = path ? fopen(path, "a") : NULL;
	if (!f)
		return 2;
	setvbuf(f, NULL, _IOLBF, 0);
	fprintf(f, "start %s %s %lld %ld\n", d->name, d->scope, d->token, (long)getpid());
	for (;;) {
		forq_checkin(host);
		fprintf(f, "checkin %ld\n", (long)getpid());
		usleep(200000);
	}
}

/* The catch-all ("*") handler: fails every job it gets with a disposition
 * chosen by FORQ_TEST_DISPOSE (retry|dead|discard), a backtrace and a
 * message longer than forq_error holds, as a language plugin would. */
static int catchall_run(const forq_job *job, forq_error *err, void *user)
{
	forq_host *host = user;
	const char *how = getenv("FORQ_TEST_DISPOSE");
	static char msg[3001];
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	forq_failure f = {.size = sizeof(f),
			  .disposition = !how ? FORQ_DISPOSE_DEFAULT
					 : !strcmp(how, "dead") ? FORQ_DISPOSE_DEAD
					 : !strcmp(how, "discard") ? FORQ_DISPOSE_DISCARD
								   : FORQ_DISPOSE_RETRY,
			  .retry_in = 3600,
			  .backtrace_json = "[\"catchall.c:1\"]",
			  .error_message = msg};
	host->set_failure(host, &f);
	return forq_error_set(err, "CatchAll::Failed", "no class %s", job->job_class);
}

static void on_event(forq_host *host, int event, void *user)
{
	const char *path = getenv("FORQ_TEST_EVENT_FILE");
	FILE *f = path ? fopen(path, "a") : NULL;
	(void)host;
	(void)user;
	if (!f)
		return;
	fprintf(f, "%s %ld\n", event == FORQ_EVENT_QUIET ? "quiet" : "shutdown", (long)getpid());
	fclose(f);
}

int forq_plugin_init(forq_host *host)
{
	if (getenv("FORQ_TEST_CATCHALL")) {
		if (host->register_handler(host, "*", catchall_run, host) != FORQ_OK)
			return FORQ_FAIL;
		host->set_event_hook(host, on_event, NULL);
	}
	const char *mb = getenv("FORQ_TEST_TABLE_MB");
	if (mb && atoi(mb) > 0) {
		table_len = (size_t)atoi(mb) << 20;
		table = malloc(table_len);
		if (!table)
			return FORQ_FAIL;
		/* Distinct bytes on every page, so the memory is really there. */
		for (size_t i = 0; i < table_len; i++)
			table[i] = (unsigned char)(i * 2654435761u >> 24);
	}
	host->set_hooks(host, before_fork, after_fork, fini, NULL);
	if (FORQ_HOST_HAS(host, register_daemon) &&
	    host->register_daemon(host, "testdaemon", test_daemon, host) != FORQ_OK)
		return FORQ_FAIL;
	return host->register_handler(host, "TestJob", echo_run, NULL);
}
