/* log: formats one line per event (text key=value or JSON) and writes it to
 * stdout with a single write(2), so lines from many processes never interleave
 * mid-line. Nothing here allocates: lines are built in a stack buffer. */
#include "log.h"

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define LOG_LINE_MAX 4096

static struct {
	enum log_level level;
	enum log_format format;
	const char *role;
	int slot;
	char path[PATH_MAX]; /* the log file; "" = stdout as inherited */
} log_state = {LOG_INFO, LOG_FORMAT_TEXT, "forq", -1, ""};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level level, enum log_format format)
{
	log_state.level = level;
	log_state.format = format;
}

void log_set_role(const char *role, int slot)
{
	log_state.role = role;
	log_state.slot = slot;
}

int log_open_file(const char *path)
{
	if (strlen(path) >= sizeof(log_state.path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		return -1;
	/* dup2 over a live fd is atomic: no write finds fd 1 closed. */
	if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	if (log_state.path != path)
		memmove(log_state.path, path, strlen(path) + 1);
	return 0;
}

int log_reopen(void)
{
	return log_state.path[0] ? log_open_file(log_state.path) : 0;
}

const char *log_file_path(void)
{
	return log_state.path[0] ? log_state.path : NULL;
}

bool log_enabled(enum log_level level)
{
	return level >= log_state.level;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (!strcasecmp(s, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	if (!strcasecmp(s, "warning")) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (!strcasecmp(s, "text"))
		*out = LOG_FORMAT_TEXT;
	else if (!strcasecmp(s, "json"))
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

/* A line under construction. Writes are all-or-nothing, so a long line is
 * cut between whole units (never inside an escape); `full` drops every later
 * field; the last LOG_RESERVE bytes are kept for the closing quote, brace
 * and newline, so even a cut JSON line stays valid JSON. */
#define LOG_RESERVE 3

struct buf {
	char *p;
	size_t len, cap;
	bool full;
};

static bool buf_put(struct buf *b, const char *s, size_t n)
{
	if (b->full || b->len + n > b->cap) {
		b->full = true;
		return false;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return true;
}

static bool buf_puts(struct buf *b, const char *s)
{
	return buf_put(b, s, strlen(s));
}

static bool buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	return n >= 0 && buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string: control characters escaped, bytes >= 0x80 passed as is.
 * Cut short (and still closed) when the line is full; false only if not
 * even the opening quote fits. */
static bool buf_json_str(struct buf *b, const char *s)
{
	if (!buf_put(b, "\"", 1))
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		size_t n;
		if (c == '"' || c == '\\')
			n = (size_t)snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c == '\n')
			n = (size_t)snprintf(esc, sizeof(esc), "\\n");
		else if (c == '\t')
			n = (size_t)snprintf(esc, sizeof(esc), "\\t");
		else if (c < 0x20)
			n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		else
			esc[0] = (char)c, n = 1;
		if (!buf_put(b, esc, n))
			break;
	}
	b->p[b->len++] = '"'; /* from the reserve when the line is full */
	return true;
}

/* Text values are quoted only when they need it, logfmt style. */
static bool buf_text_str(struct buf *b, const char *s)
{
	bool plain = *s != '\0';
	for (const char *q = s; *q; q++)
		if (*q <= ' ' || *q == '"' || *q == '=' || *q == '\\')
			plain = false;
	if (plain && b->len + strlen(s) <= b->cap)
		return buf_puts(b, s);
	return buf_json_str(b, s);
}

static bool buf_value(struct buf *b, const struct log_field *f, bool json)
{
	switch (f->type) {
	case LF_INT_T:
		return buf_printf(b, "%lld", f->i);
	case LF_DBL_T:
		if (isfinite(f->d))
			return buf_printf(b, "%.3f", f->d);
		return buf_puts(b, json ? "null" : "-");
	case LF_BOOL_T:
		return buf_puts(b, f->i ? "true" : "false");
	case LF_STR_T:
		return json ? buf_json_str(b, f->s ? f->s : "") : buf_text_str(b, f->s ? f->s : "");
	case LF_END_T:
		break;
	}
	return true;
}

/* A field goes in whole (its string value possibly cut) or not at all. */
static void buf_field(struct buf *b, const struct log_field *f, bool json)
{
	size_t saved = b->len;
	bool ok;
	if (json)
		ok = buf_puts(b, ",\"") && buf_puts(b, f->key) && buf_puts(b, "\":");
	else
		ok = buf_puts(b, " ") && buf_puts(b, f->key) && buf_puts(b, "=");
	if (!ok || !buf_value(b, f, json))
		b->len = saved;
}

static void format_time(char *out, size_t n)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

void log_emit(enum log_level level, const char *msg, const struct log_field *fields)
{
	char line[LOG_LINE_MAX], ts[40];
	struct buf b = {line, 0, sizeof(line) - LOG_RESERVE, false};
	bool json = log_state.format == LOG_FORMAT_JSON;
	int saved = errno;

	if (!log_enabled(level))
		return;
	format_time(ts, sizeof(ts));
	if (json) {
		buf_puts(&b, "{\"ts\":");
		buf_json_str(&b, ts);
		buf_printf(&b, ",\"level\":\"%s\",\"role\":", level_names[level]);
		buf_json_str(&b, log_state.role);
		if (log_state.slot >= 0)
			buf_printf(&b, ",\"slot\":%d", log_state.slot);
		buf_printf(&b, ",\"pid\":%ld,\"msg\":", (long)getpid());
		buf_json_str(&b, msg);
	} else {
		buf_printf(&b, "ts=%s level=%s role=%s", ts, level_names[level], log_state.role);
		if (log_state.slot >= 0)
			buf_printf(&b, " slot=%d", log_state.slot);
		buf_printf(&b, " pid=%ld msg=", (long)getpid());
		buf_json_str(&b, msg);
	}
	for (; fields && fields->key; fields++)
		buf_field(&b, fields, json);
	if (json)
		line[b.len++] = '}';
	line[b.len++] = '\n';
	/* One write per line; a short write to a pipe of this size cannot happen
	 * unless the reader is gone, and then there is nobody to tell. */
	ssize_t w = write(STDOUT_FILENO, line, b.len);
	(void)w;
	errno = saved;
}
