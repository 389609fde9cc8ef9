/* noop: handles class NoopJob by doing nothing, successfully. The benchmark
 * uses it to measure forq's own overhead per job. */
#include <forq.h>

FORQ_PLUGIN_API;

static int noop_run(const forq_job *job, forq_error *err, void *user)
{
	(void)job;
	(void)err;
	(void)user;
	return FORQ_OK;
}

int forq_plugin_init(forq_host *host)
{
	return host->register_handler(host, "NoopJob", noop_run, NULL);
}
