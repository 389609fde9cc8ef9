/* log: formats one line per event (text key=value or JSON) and writes it to
 * stdout with a single write(2), so lines from many processes never interleave
 * mid-line. Nothing here allocates: lines are built in a stack buffer. */
#include "log.h"

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
} log_state = {LOG_INFO, LOG_FORMAT_TEXT, "forq", -1};

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

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_putc(struct buf *b, char c)
{
	if (b->len + 1 < b->cap)
		b->p[b->len++] = c;
}

static void buf_puts(struct buf *b, const char *s)
{
	while (*s)
		buf_putc(b, *s++);
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->len + 1 >= b->cap)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n < b->cap - b->len ? (size_t)n : b->cap - b->len - 1;
}

/* JSON string body: control characters escaped, bytes >= 0x80 passed as is. */
static void buf_json_str(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c == '\n') {
			buf_puts(b, "\\n");
		} else if (c == '\t') {
			buf_puts(b, "\\t");
		} else if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_putc(b, (char)c);
		}
	}
	buf_putc(b, '"');
}

/* Text values are quoted only when they need it, logfmt style. */
static void buf_text_str(struct buf *b, const char *s)
{
	bool plain = *s != '\0';
	for (const char *q = s; *q; q++)
		if (*q <= ' ' || *q == '"' || *q == '=' || *q == '\\')
			plain = false;
	if (plain)
		buf_puts(b, s);
	else
		buf_json_str(b, s);
}

static void buf_field(struct buf *b, const struct log_field *f, bool json)
{
	if (json) {
		buf_puts(b, ",");
		buf_json_str(b, f->key);
		buf_putc(b, ':');
	} else {
		buf_putc(b, ' ');
		buf_puts(b, f->key);
		buf_putc(b, '=');
	}
	switch (f->type) {
	case LF_INT_T:
		buf_printf(b, "%lld", f->i);
		break;
	case LF_DBL_T:
		if (isfinite(f->d))
			buf_printf(b, "%.3f", f->d);
		else
			buf_puts(b, json ? "null" : "-");
		break;
	case LF_BOOL_T:
		buf_puts(b, f->i ? "true" : "false");
		break;
	case LF_STR_T:
		if (json)
			buf_json_str(b, f->s ? f->s : "");
		else
			buf_text_str(b, f->s ? f->s : "");
		break;
	case LF_END_T:
		break;
	}
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
	struct buf b = {line, 0, sizeof(line) - 1};
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
		buf_putc(&b, '}');
	line[b.len++] = '\n';
	/* One write per line; a short write to a pipe of this size cannot happen
	 * unless the reader is gone, and then there is nobody to tell. */
	ssize_t w = write(STDOUT_FILENO, line, b.len);
	(void)w;
	errno = saved;
}
