/* job_int: what the job_*.c files share and nothing else includes: the
 * growing string, the string encoder and the top-level member scanner and
 * splicer (job_text.c) that both payload parsing (job.c) and building
 * (job_build.c) use. Not part of the job API (job.h). */
#ifndef FORQ_JOB_INT_H
#define FORQ_JOB_INT_H

#include <stdbool.h>
#include <stddef.h>

/* Every number is read as a double, so integers beyond 64 bits (legal JSON,
 * written by Ruby) do not make a valid payload "invalid"; whether a member
 * was written as an integer is read from its text instead. For jansson's
 * json_loads, so only for files that include <jansson.h>. */
#define JOB_LOAD_FLAGS (JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/* ---- UTF-8 and string encoding ---- */

bool job_utf8_is_valid(const char *s);
/* s as a JSON string literal (caller frees): invalid UTF-8 becomes U+FFFD,
 * cut to at most max characters (0 = no limit); NULL encodes as "". */
char *job_encode_string(const char *s, size_t max);

/* ---- top-level member scanner (on text jansson has validated) ---- */

struct span {
	size_t off, len;
};

struct member {
	struct span key, val; /* key includes its quotes */
};

struct members {
	struct member *m;
	size_t n, cap;
	size_t end; /* just after the last value, or after '{' when empty */
};

/* Finds every top-level member of the object text s. 0, or -1 (ms empty);
 * the caller frees ms->m. */
int job_scan_members(const char *s, struct members *ms);
/* The last member named `name` (the one JSON readers use), or NULL. */
const struct member *job_members_find(const char *s, const struct members *ms, const char *name);
bool job_span_is_int(const char *s, struct span v);
/* The span's text without the white space outside strings (caller frees). */
char *job_span_compact(const char *s, struct span v);

/* ---- splicing ---- */

struct edit {
	const char *key; /* plain ASCII member name */
	const char *val; /* JSON text of the new value */
	bool done;
};

/* s with the members named in ed replaced or appended (caller frees). */
char *job_splice(const char *s, const struct members *ms, struct edit *ed, size_t ned);

#endif
