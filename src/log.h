/* log: one logging API for every process. Lines go to stdout either as
 * key=value text or as JSON objects, one per line, each with a timestamp,
 * level, role and pid, a message and typed fields (or to the log file,
 * which then takes stdout's place):
 *
 *     log_info("worker spawned", LF_INT("slot", 2), LF_INT("pid", pid));
 */
#ifndef FORQ_LOG_H
#define FORQ_LOG_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

enum log_field_type { LF_END_T, LF_INT_T, LF_STR_T, LF_DBL_T, LF_BOOL_T };

struct log_field {
	const char *key;
	enum log_field_type type;
	long long i;
	const char *s;
	double d;
};

#define LF_INT(k, v) ((struct log_field){.key = (k), .type = LF_INT_T, .i = (long long)(v)})
#define LF_STR(k, v) ((struct log_field){.key = (k), .type = LF_STR_T, .s = (v)})
#define LF_DBL(k, v) ((struct log_field){.key = (k), .type = LF_DBL_T, .d = (double)(v)})
#define LF_BOOL(k, v) ((struct log_field){.key = (k), .type = LF_BOOL_T, .i = !!(v)})
/* errno as text: use right after the failed call (like OpenBSD's log_warn). */
#define LF_ERRNO() LF_STR("error", strerror(errno))
#define LF_END ((struct log_field){.key = NULL, .type = LF_END_T})

#define log_at(lvl, msg, ...)                                                                      \
	log_emit((lvl), (msg), (const struct log_field[]){__VA_ARGS__ __VA_OPT__(, ) LF_END})
#define log_debug(msg, ...) log_at(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_at(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_at(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_ERROR, msg, __VA_ARGS__)

/* role is a static string ("master", "worker"); slot < 0 means none. */
void log_setup(enum log_level level, enum log_format format);
void log_set_role(const char *role, int slot);
bool log_enabled(enum log_level level);
void log_emit(enum log_level level, const char *msg, const struct log_field *fields);

/* Appends every later line to path instead of stdout: the file goes over
 * fds 1 and 2, so children forked or spawned later (workers, exec handlers)
 * write to it too. 0, or -1 with errno and the old output kept. */
int log_open_file(const char *path);
/* Opens that path again (after logrotate renamed the file). Open, dup2 and
 * close only: a line is written whole to the old file or to the new one.
 * 0 when done or no file is set; -1 with errno, the old file kept. */
int log_reopen(void);
/* The path given to log_open_file, or NULL. */
const char *log_file_path(void);

int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
const char *log_level_name(enum log_level level);

#endif
