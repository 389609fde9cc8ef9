/* util: allocation wrappers that abort on OOM, bounded string helpers and
 * small parsers shared by every module. No I/O beyond the abort message. */
#ifndef FORQ_UTIL_H
#define FORQ_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Each returns memory the caller owns; on OOM the process aborts. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh string the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growing string: start from {0}, add, then take it (the caller frees). */
struct util_buf {
	char *p;
	size_t len, cap;
};
void util_buf_add(struct util_buf *b, const void *s, size_t n);
void util_buf_adds(struct util_buf *b, const char *s);
/* The built string, owned by the caller ("" when nothing was added). */
char *util_buf_take(struct util_buf *b);

/* Copies at most size-1 bytes and always terminates; returns strlen(src). */
size_t util_strlcpy(char *dst, const char *src, size_t size);

/* printf into an error buffer of n bytes (nothing when err is NULL or n 0). */
void util_seterr(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Strips leading and trailing white space in place; returns s. */
char *util_trim(char *s);

/* Strict parsers: the whole string must be consumed; 0 on success, -1 else. */
int util_parse_long(const char *s, long min, long max, long *out);
int util_parse_double(const char *s, double min, double max, double *out);
int util_parse_bool(const char *s, bool *out);
/* A size in KiB: a whole number with an optional K, M or G suffix (powers of
 * 1024; no suffix means K), from min_kb to max_kb. */
int util_parse_size_kb(const char *s, long min_kb, long max_kb, long *out_kb);

/* Seconds since an arbitrary point, monotonic; and wall-clock epoch seconds. */
double util_now_mono(void);
double util_now_wall(void);

/* A uniform double in [0, 1) from a per-process PRNG seeded by util_reseed(). */
double util_random(void);
void util_reseed(void);

#endif
