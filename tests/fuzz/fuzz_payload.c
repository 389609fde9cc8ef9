/* libFuzzer harness for job: job_parse on arbitrary bytes (a NUL byte must
 * be refused), job_check, then the rewrites forq makes to a parsed payload
 * (the failure fields, enqueued_at), which must parse again and keep class,
 * jid and queue. A rewrite that produces a payload forq itself rejects
 * would send a good job to the dead set: abort() on it. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

#define NOW 1795380437.166057
#define RND 0.5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *in, const char *out, const char *err)
{
	fprintf(stderr, "fuzz_payload: %s\n  input:  %s\n  output: %s\n  error:  %s\n", what, in,
	        out ? out : "(null)", err ? err : "");
	abort();
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* out (a rewrite of the parsed j) must parse, with class and jid unchanged
 * and the queue as given. */
static void check_reparse(const struct job *j, const char *out, const char *queue, const char *what)
{
	struct job k;
	char err[512] = "";
	if (job_parse(&k, out, strlen(out), err, sizeof(err)))
		fail(what, j->raw, out, err);
	if (!same(k.job_class, j->job_class) || !same(k.jid, j->jid))
		fail("class or jid changed", j->raw, out, what);
	if (!same(k.queue, queue))
		fail("queue is not the expected one", j->raw, out, what);
	job_free(&k);
}

/* The failure rewrite; the error message is the input itself, so invalid
 * UTF-8, control characters and long texts reach the encoder. */
static void check_failure(const struct job *j, const char *text, size_t size)
{
	struct job_failure f = {
	    .error_class = "RuntimeError",
	    .error_message = text,
	    .fetched_queue = size % 2 ? "default" : NULL,
	    .default_max = JOB_MAX_RETRIES_DEFAULT,
	    .now = NOW,
	    .rnd = RND,
	};
	enum job_outcome outcome;
	double score;
	char *out = job_failure_payload(j, &f, &outcome, &score);
	if (outcome == JOB_OUT_DISCARD) {
		if (out)
			fail("discard returned a payload", j->raw, out, NULL);
		return;
	}
	if (!out)
		fail("retry or dead returned NULL", j->raw, NULL, NULL);
	if (!j->job_class) { /* never parsed: dead, with the text as it was */
		if (outcome != JOB_OUT_DEAD || strcmp(out, j->raw))
			fail("unparsed payload not kept as is for the dead set", j->raw, out, NULL);
		free(out);
		return;
	}
	if (!isfinite(score) || score < NOW)
		fail("score is not finite or before now", j->raw, out, NULL);
	const char *q = j->retry_queue    ? j->retry_queue
	                : f.fetched_queue ? f.fetched_queue
	                                  : j->queue;
	check_reparse(j, out, q, "job_failure_payload output does not parse");
	free(out);
}

static void check_enqueued_at(const struct job *j)
{
	struct job k;
	char *out = job_with_enqueued_at(j->raw, NOW);
	check_reparse(j, out, j->queue, "job_with_enqueued_at output does not parse");
	job_parse(&k, out, strlen(out), NULL, 0);
	if (fabs(k.enqueued_at - NOW) > 1e-3)
		fail("enqueued_at not set to now", j->raw, out, NULL);
	job_free(&k);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[512];
	struct job j;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	int rc = job_parse(&j, text, size, err, sizeof(err));
	if (rc == 0 && memchr(text, '\0', size))
		fail("payload with a NUL byte accepted", text, NULL, NULL);
	check_failure(&j, text, size);
	if (rc == 0) {
		job_check(&j, err, sizeof(err));
		check_enqueued_at(&j);
	}
	else
		free(job_with_enqueued_at(text, NOW));

	char *q = job_peek_queue(text);
	if (rc == 0 && !same(q ? q : "", j.queue))
		fail("job_peek_queue differs from job_parse", text, q, NULL);
	free(q);
	job_free(&j);
	free(text);
	return 0;
}
