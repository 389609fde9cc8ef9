/* cronpub: payloads are built with job.h (the one JSON module) from JSON
 * text the configuration has already checked; the sidekiq-cron record is
 * what its Job#to_hash writes for the same entry. */
#include "cronpub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"
#include "util.h"

char *cronpub_queue(const struct config_cron *e)
{
	const char *q = e->queue ? e->queue : "default";
	if (e->active_job && e->queue_name_prefix && *e->queue_name_prefix)
		return xasprintf("%s%s%s", e->queue_name_prefix,
		                 e->queue_name_delimiter && *e->queue_name_delimiter
		                     ? e->queue_name_delimiter
		                     : "_",
		                 q);
	return xstrdup(q);
}

static const struct {
	const char *macro, *fields;
} cron_macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

char *cronpub_cron(const struct config_cron *e)
{
	const char *fields = e->schedule;
	for (size_t i = 0; i < ARRAY_SIZE(cron_macros); i++)
		if (!strcasecmp(e->schedule, cron_macros[i].macro))
			fields = cron_macros[i].fields;
	return xasprintf("%s %s", fields, e->timezone ? e->timezone : "UTC");
}

char *cronpub_message(const struct config_cron *e)
{
	if (e->message)
		return xstrdup(e->message);
	char *q = job_json_quote(e->queue ? e->queue : "default"),
	     *k = job_json_quote(e->job_class);
	char *retry = e->retry ? xasprintf(",\"retry\":%s", e->retry) : xstrdup("");
	char *m = xasprintf("{\"queue\":%s,\"class\":%s,\"args\":%s%s}", q, k,
	                    e->args ? e->args : "[]", retry);
	free(q);
	free(k);
	free(retry);
	return m;
}

static void format_utc(int64_t t, const char *fmt, char out[CRONPUB_TIME_MAX])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(out, CRONPUB_TIME_MAX, fmt, &tm))
		snprintf(out, CRONPUB_TIME_MAX, "%lld", (long long)t);
}

void cronpub_member(int64_t t, char out[CRONPUB_TIME_MAX])
{
	format_utc(t, "%Y-%m-%dT%H:%M:%SZ", out);
}

void cronpub_last_time(int64_t t, char out[CRONPUB_TIME_MAX])
{
	format_utc(t, "%Y-%m-%d %H:%M:%S +0000", out);
}

/* args with the tick appended as a float, as sidekiq-cron appends the
 * time (it appends Time.now; the tick is the time the job is for, and the
 * same on a replay). */
static char *args_for_tick(const struct config_cron *e, int64_t tick)
{
	const char *a = e->args ? e->args : "[]";
	if (!e->date_as_argument)
		return xstrdup(a);
	const char *close = strrchr(a, ']');
	size_t head = close ? (size_t)(close - a) : strlen(a);
	bool empty = true;
	for (const char *p = strchr(a, '[') ? strchr(a, '[') + 1 : a; p < a + head; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			empty = false;
	return xasprintf("%.*s%s%lld.0]", (int)head, a, empty ? "" : ",", (long long)tick);
}

/* ActiveJob's job_id is a UUID; this one is derived from the jid so that a
 * replayed tick carries the same id. */
static void aj_job_id(const char *jid, char out[37])
{
	char hex[33];
	size_t n = strlen(jid);
	for (size_t i = 0; i < 32; i++) {
		char ch = n ? jid[i % n] : '0';
		hex[i] = strchr("0123456789abcdef", ch) && ch ? ch : '0';
	}
	hex[12] = '4';
	hex[16] = '8';
	hex[32] = '\0';
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* [job.serialize] as ActiveJob 6.1 writes it. */
static char *aj_args(const struct config_cron *e, const char *queue, const char *args,
                     const char *jid, double now)
{
	char id[37], at[CRONPUB_TIME_MAX];
	aj_job_id(jid, id);
	cronpub_member((int64_t)now, at);
	char *k = job_json_quote(e->job_class), *q = job_json_quote(queue);
	char *out = xasprintf("[{\"job_class\":%s,\"job_id\":\"%s\",\"provider_job_id\":null,"
	                      "\"queue_name\":%s,\"priority\":null,\"arguments\":%s,"
	                      "\"executions\":0,\"exception_executions\":{},\"locale\":\"en\","
	                      "\"timezone\":\"UTC\",\"enqueued_at\":\"%s\"}]",
	                      k, id, q, args, at);
	free(k);
	free(q);
	return out;
}

/* A message template with the tick's args, jid and times set. */
static char *from_message(const struct config_cron *e, const char *args, const char *jid,
                          double now, char *err, size_t errlen)
{
	char nowbuf[48], *j = job_json_quote(jid), *q = NULL, *cls = NULL, *out = NULL;
	const char *kv[14];
	size_t n = 0;
	if (job_json_kind(e->message) != '{') {
		util_seterr(err, errlen, "message must be a JSON object");
		goto out;
	}
	job_format_time(nowbuf, sizeof(nowbuf), now);
	kv[n++] = "args", kv[n++] = args, kv[n++] = "jid", kv[n++] = j;
	kv[n++] = "created_at", kv[n++] = nowbuf, kv[n++] = "enqueued_at", kv[n++] = nowbuf;
	char *has_q = job_json_get_string(e->message, "queue");
	q = job_json_quote(has_q ? has_q : "default");
	free(has_q);
	kv[n++] = "queue", kv[n++] = q;
	char *has_cls = job_json_get_string(e->message, "class");
	if (!has_cls && !e->job_class) {
		util_seterr(err, errlen, "message names no class");
		goto out;
	}
	if (!has_cls) {
		cls = job_json_quote(e->job_class);
		kv[n++] = "class", kv[n++] = cls;
	}
	free(has_cls);
	out = job_with_members(e->message, kv, n / 2);
out:
	free(j);
	free(q);
	free(cls);
	return out;
}

char *cronpub_payload(const struct config_cron *e, int64_t tick, const char *jid, double now,
                      char *err, size_t errlen)
{
	char *args = args_for_tick(e, tick), *queue = cronpub_queue(e), *out = NULL;
	const char *retry = e->retry ? e->retry : "true";
	if (e->message) {
		out = from_message(e, args, jid, now, err, errlen);
	} else if (e->active_job) {
		char *aj = aj_args(e, queue, args, jid, now);
		char *raw = job_build(CRONPUB_AJ_WRAPPER, aj, queue, retry, jid, NULL, now, false,
		                      err, errlen);
		char *k = job_json_quote(e->job_class);
		const char *kv[] = {"wrapped", k};
		out = raw ? job_with_members(raw, kv, 1) : NULL;
		free(raw);
		free(k);
		free(aj);
	} else {
		out =
		    job_build(e->job_class, args, queue, retry, jid, NULL, now, false, err, errlen);
	}
	free(args);
	free(queue);
	return out;
}
