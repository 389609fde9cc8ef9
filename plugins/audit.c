/* audit: a realistic plugin. Class AuditJob appends one JSON line per job
 * (time, jid, args) to an append-only audit log and fsyncs it, so an event
 * is durable before the job is acknowledged. The file is opened in each
 * worker after fork (never shared across fork), closed at exit.
 *
 *   FORQ_AUDIT_LOG   path of the log (default /tmp/forq-audit.log)
 *   args             any JSON array; written as it came
 */
#include <forq.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

FORQ_PLUGIN_API;

struct audit {
	const char *path;
	int fd;
};

static struct audit audit = {NULL, -1};

static int audit_after_fork(forq_host *host, void *user)
{
	struct audit *a = user;
	char msg[512];
	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (a->fd < 0) {
		snprintf(msg, sizeof(msg), "audit: cannot open %s: %s", a->path, strerror(errno));
		host->log(host, FORQ_LOG_ERROR, msg);
		return FORQ_FAIL; /* the worker exits 78: a configuration problem */
	}
	return FORQ_OK;
}

static void audit_fini(void *user)
{
	struct audit *a = user;
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}

static int audit_run(const forq_job *job, forq_error *err, void *user)
{
	struct audit *a = user;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* jid and class come from a JSON parser, so they hold no raw quotes
	 * only if the producer was sane: refuse anything that would break the
	 * line rather than escape it here. */
	if (strpbrk(job->jid, "\"\\\n") || strpbrk(job->job_class, "\"\\\n"))
		return forq_error_set(err, "ArgumentError", "jid or class not printable as is");
	int n = dprintf(a->fd, "{\"at\":%lld.%06ld,\"jid\":\"%s\",\"class\":\"%s\",\"args\":%s}\n",
			(long long)ts.tv_sec, ts.tv_nsec / 1000, job->jid, job->job_class,
			job->args_json);
	if (n < 0)
		return forq_error_set(err, "IOError", "write %s: %s", a->path, strerror(errno));
	if (fsync(a->fd))
		return forq_error_set(err, "IOError", "fsync %s: %s", a->path, strerror(errno));
	return FORQ_OK;
}

int forq_plugin_init(forq_host *host)
{
	const char *path = getenv("FORQ_AUDIT_LOG");
	audit.path = path && *path ? path : "/tmp/forq-audit.log";
	host->set_hooks(host, NULL, audit_after_fork, audit_fini, &audit);
	return host->register_handler(host, "AuditJob", audit_run, &audit);
}
