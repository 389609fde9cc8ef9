/* cronexpr: parses cron expressions into bit sets and finds their next and
 * previous ticks in a time zone. The search jumps field by field through
 * wall-clock time, one stretch of constant UTC offset at a time, so that a
 * tick once a year costs about as much as one every second. */
#include "cronexpr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define CRON_DAY 86400
#define CRON_SPAN (INT64_C(146097) * CRON_DAY) /* 400 Gregorian years */
#define CRON_NONE INT64_MIN

enum cron_field { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

struct cronexpr {
	uint64_t set[F_COUNT]; /* bit v set: value v matches (dow 7 folded onto 0) */
	bool dom_star, dow_star; /* the field starts with '*' */
	bool hour_every;          /* hour is '*' or '*' / 1: fires in both repeated hours */
	bool has_seconds;
};

struct field_spec {
	const char *name;
	int min, max;
	const char *const *names; /* 3-letter names for min, min+1, ... */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field_spec specs[F_COUNT] = {
	[F_SEC] = {"second", 0, 59, NULL},
	[F_MIN] = {"minute", 0, 59, NULL},
	[F_HOUR] = {"hour", 0, 23, NULL},
	[F_DOM] = {"day-of-month", 1, 31, NULL},
	[F_MON] = {"month", 1, 12, month_names},
	[F_DOW] = {"day-of-week", 0, 7, day_names},
};

static const struct {
	const char *name, *expansion;
} macros[] = {
	{"@yearly", "0 0 1 1 *"},   {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},   {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

/* ---- parsing ---- */

/* A span of the input text: fields and list items are never copied. */
struct span {
	const char *p;
	size_t n;
};

/* How much of a bad token an error message quotes. */
static int quote_len(size_t n)
{
	return n > 32 ? 32 : (int)n;
}

static bool is_sep(char c)
{
	return c == ' ' || c == '\t';
}

/* A number or (where the field has them) a name at the start of s, with
 * its length in *used; -1 with an error when there is neither. */
static int parse_value(const struct field_spec *f, struct span s, size_t *used, int *out,
		       char *err, size_t errlen)
{
	size_t i = 0;
	long v = 0;
	while (i < s.n && isdigit((unsigned char)s.p[i])) {
		if (v <= 1000000) /* saturate: all we need is "too big" */
			v = v * 10 + (s.p[i] - '0');
		i++;
	}
	if (!i && f->names && s.n >= 3)
		for (int k = 0; f->names[k]; k++)
			if (!strncasecmp(s.p, f->names[k], 3) &&
			    (s.n == 3 || !isalpha((unsigned char)s.p[3]))) {
				*used = 3;
				*out = f->min + k;
				return 0;
			}
	if (!i) {
		util_seterr(err, errlen, "%s: bad value '%.*s'", f->name, quote_len(s.n), s.p);
		return -1;
	}
	if (v < f->min || v > f->max) {
		util_seterr(err, errlen, "%s: %.*s is out of range %d-%d", f->name,
			    quote_len(i), s.p, f->min, f->max);
		return -1;
	}
	*used = i;
	*out = (int)v;
	return 0;
}

/* The n of "/n" at s.p[*used]; a step beyond the field's maximum can only
 * be a mistake (it would pick the first value alone). */
static int parse_step(const struct field_spec *f, struct span s, size_t *used, int *step,
		      char *err, size_t errlen)
{
	size_t i = *used + 1, start = i;
	long v = 0;
	while (i < s.n && isdigit((unsigned char)s.p[i])) {
		if (v <= 1000000)
			v = v * 10 + (s.p[i] - '0');
		i++;
	}
	if (i == start) {
		util_seterr(err, errlen, "%s: bad step in '%.*s'", f->name, quote_len(s.n), s.p);
		return -1;
	}
	if (v == 0) {
		util_seterr(err, errlen, "%s: step 0", f->name);
		return -1;
	}
	if (v > f->max) {
		util_seterr(err, errlen, "%s: step %.*s is out of range 1-%d", f->name,
			    quote_len(i - start), s.p + start, f->max);
		return -1;
	}
	*used = i;
	*step = (int)v;
	return 0;
}

/* One list item: '*', a, a-b, each optionally followed by /step. */
static int parse_item(const struct field_spec *f, struct span s, uint64_t *set, char *err,
		      size_t errlen)
{
	int lo = f->min, hi = f->max, step = 1;
	size_t used = 0;
	bool star = s.n && s.p[0] == '*';
	if (star)
		used = 1;
	else if (parse_value(f, s, &used, &lo, err, errlen))
		return -1;
	else if (used < s.n && s.p[used] == '-') {
		size_t u2;
		struct span rest = {s.p + used + 1, s.n - used - 1};
		if (parse_value(f, rest, &u2, &hi, err, errlen))
			return -1;
		if (hi < lo) {
			util_seterr(err, errlen, "%s: range %d-%d goes backwards", f->name, lo, hi);
			return -1;
		}
		used += 1 + u2;
	} else if (!(used < s.n && s.p[used] == '/'))
		hi = lo; /* a single value; "a/n" runs from a to the maximum */
	if (used < s.n && s.p[used] == '/') {
		if (parse_step(f, s, &used, &step, err, errlen))
			return -1;
	}
	if (used != s.n) {
		util_seterr(err, errlen, "%s: bad value '%.*s'", f->name, quote_len(s.n), s.p);
		return -1;
	}
	for (int v = lo; v <= hi; v += step)
		*set |= UINT64_C(1) << v;
	return 0;
}

static int parse_field(enum cron_field k, struct span s, struct cronexpr *e, char *err,
		       size_t errlen)
{
	const struct field_spec *f = &specs[k];
	size_t start = 0;
	for (size_t i = 0; i <= s.n; i++) {
		if (i < s.n && s.p[i] != ',')
			continue;
		if (i == start) {
			util_seterr(err, errlen, "%s: empty list item", f->name);
			return -1;
		}
		struct span item = {s.p + start, i - start};
		if (parse_item(f, item, &e->set[k], err, errlen))
			return -1;
		start = i + 1;
	}
	if (k == F_DOW && (e->set[k] >> 7 & 1)) /* 7 is Sunday too */
		e->set[k] = (e->set[k] | 1) & ~(UINT64_C(1) << 7);
	if (k == F_DOM)
		e->dom_star = s.p[0] == '*';
	else if (k == F_DOW)
		e->dow_star = s.p[0] == '*';
	else if (k == F_HOUR)
		e->hour_every = (s.n == 1 && s.p[0] == '*') || (s.n == 3 && !memcmp(s.p, "*/1", 3));
	return 0;
}

/* Splits text into fields, keeping the first max; returns how many there
 * are in all, so the error can say. */
static int split_fields(const char *text, struct span *fields, int max)
{
	int n = 0;
	const char *p = text;
	for (;;) {
		while (is_sep(*p))
			p++;
		if (!*p)
			return n;
		const char *start = p;
		while (*p && !is_sep(*p))
			p++;
		if (n < max)
			fields[n] = (struct span){start, (size_t)(p - start)};
		n++;
	}
}

static const char *expand_macro(struct span word, char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(macros); i++)
		if (strlen(macros[i].name) == word.n &&
		    !strncasecmp(word.p, macros[i].name, word.n))
			return macros[i].expansion;
	util_seterr(err, errlen, "unknown macro '%.*s'", quote_len(word.n), word.p);
	return NULL;
}

struct cronexpr *cronexpr_parse(const char *text, char *err, size_t errlen)
{
	struct span fields[7];
	char *copy = xstrdup(text), *buf = util_trim(copy); /* trims \n and friends too */
	struct cronexpr *e = xcalloc(1, sizeof(*e));
	int n = split_fields(buf, fields, 7);
	if (n >= 1 && fields[0].p[0] == '@') {
		const char *exp = expand_macro(fields[0], err, errlen);
		if (!exp)
			goto out_free;
		if (n > 1) {
			util_seterr(err, errlen, "unexpected text after %.*s",
				    quote_len(fields[0].n), fields[0].p);
			goto out_free;
		}
		n = split_fields(exp, fields, 7);
	}
	if (n != 5 && n != 6) {
		if (n == 0)
			util_seterr(err, errlen, "empty expression");
		else
			util_seterr(err, errlen, "expected 5 or 6 fields, got %d", n);
		goto out_free;
	}
	e->has_seconds = n == 6;
	if (!e->has_seconds)
		e->set[F_SEC] = 1;
	for (int i = 0; i < n; i++)
		if (parse_field((enum cron_field)(i + (n == 5)), fields[i], e, err, errlen))
			goto out_free;
	free(copy);
	return e;
out_free:
	free(copy);
	free(e);
	return NULL;
}

void cronexpr_free(struct cronexpr *e)
{
	free(e);
}

bool cronexpr_has_seconds(const struct cronexpr *e)
{
	return e->has_seconds;
}

/* ---- wall-clock search ---- */

/* The smallest member of set at or above v, or -1. */
static int bit_next(uint64_t set, int v)
{
	if (v > 63)
		return -1;
	uint64_t m = set >> v;
	return m ? v + __builtin_ctzll(m) : -1;
}

/* The largest member of set at or below v, or -1. */
static int bit_prev(uint64_t set, int v)
{
	if (v < 0)
		return -1;
	uint64_t m = v >= 63 ? set : set & ((UINT64_C(2) << v) - 1);
	return m ? 63 - __builtin_clzll(m) : -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* A wall-clock position: a day (since the epoch) and a time of day. */
struct wall {
	int64_t day;
	int year, month, mday;
	int hour, minute, second;
};

static void wall_set_day(struct wall *w, int64_t day, bool end_of_day)
{
	w->day = day;
	tz_civil_from_days(day, &w->year, &w->month, &w->mday);
	w->hour = end_of_day ? 23 : 0;
	w->minute = w->second = end_of_day ? 59 : 0;
}

static void wall_from_local(struct wall *w, int64_t local)
{
	int64_t day = floor_div(local, CRON_DAY), secs = local - day * CRON_DAY;
	wall_set_day(w, day, false);
	w->hour = (int)(secs / 3600);
	w->minute = (int)(secs / 60 % 60);
	w->second = (int)(secs % 60);
}

static int64_t wall_local(const struct wall *w)
{
	return w->day * CRON_DAY + w->hour * 3600 + w->minute * 60 + w->second;
}

static bool day_matches(const struct cronexpr *e, const struct wall *w)
{
	bool dom = e->set[F_DOM] >> w->mday & 1;
	bool dow = e->set[F_DOW] >> (int)(((w->day + 4) % 7 + 7) % 7) & 1;
	return e->dom_star || e->dow_star ? dom && dow : dom || dow;
}

/* Moves w to the first day of the next month in the month set. */
static void wall_next_month(const struct cronexpr *e, struct wall *w)
{
	int y = w->year, m = bit_next(e->set[F_MON], w->month + 1);
	if (m < 0) {
		y++;
		m = bit_next(e->set[F_MON], 1);
	}
	wall_set_day(w, tz_days_from_civil(y, m, 1), false);
}

/* Moves w to 23:59:59 on the last day of the previous month in the set. */
static void wall_prev_month(const struct cronexpr *e, struct wall *w)
{
	int y = w->year, m = bit_prev(e->set[F_MON], w->month - 1);
	if (m < 1) {
		y--;
		m = bit_prev(e->set[F_MON], 12);
	}
	/* the day before the first of the month after */
	int64_t next_first = m == 12 ? tz_days_from_civil(y + 1, 1, 1)
				     : tz_days_from_civil(y, m + 1, 1);
	wall_set_day(w, next_first - 1, true);
}

/* The smallest matching local time in [from, limit], or CRON_NONE. Each
 * miss moves the field that missed to its next candidate and resets the
 * smaller ones, so the loop runs per month, day, hour and minute, not per
 * second. */
static int64_t wall_next(const struct cronexpr *e, int64_t from, int64_t limit)
{
	struct wall w;
	int v;
	wall_from_local(&w, from);
	while (w.day * CRON_DAY <= limit) {
		if (!(e->set[F_MON] >> w.month & 1))
			wall_next_month(e, &w);
		else if (!day_matches(e, &w) || (v = bit_next(e->set[F_HOUR], w.hour)) < 0)
			wall_set_day(&w, w.day + 1, false);
		else if (v != w.hour) {
			w.hour = v;
			w.minute = w.second = 0;
		} else if ((v = bit_next(e->set[F_MIN], w.minute)) < 0) {
			w.hour++;
			w.minute = w.second = 0;
			if (w.hour == 24)
				wall_set_day(&w, w.day + 1, false);
		} else if (v != w.minute) {
			w.minute = v;
			w.second = 0;
		} else if ((v = bit_next(e->set[F_SEC], w.second)) < 0) {
			w.minute++;
			w.second = 0;
			if (w.minute == 60) {
				w.minute = 0;
				w.hour++;
				if (w.hour == 24)
					wall_set_day(&w, w.day + 1, false);
			}
		} else {
			w.second = v;
			int64_t local = wall_local(&w);
			return local <= limit ? local : CRON_NONE;
		}
	}
	return CRON_NONE;
}

/* The largest matching local time in [lower, from], or CRON_NONE; the
 * mirror image of wall_next. */
static int64_t wall_prev(const struct cronexpr *e, int64_t from, int64_t lower)
{
	struct wall w;
	int v;
	wall_from_local(&w, from);
	while (w.day * CRON_DAY + CRON_DAY - 1 >= lower) {
		if (!(e->set[F_MON] >> w.month & 1))
			wall_prev_month(e, &w);
		else if (!day_matches(e, &w) || (v = bit_prev(e->set[F_HOUR], w.hour)) < 0)
			wall_set_day(&w, w.day - 1, true);
		else if (v != w.hour) {
			w.hour = v;
			w.minute = w.second = 59;
		} else if ((v = bit_prev(e->set[F_MIN], w.minute)) < 0) {
			w.hour--;
			w.minute = w.second = 59;
			if (w.hour < 0)
				wall_set_day(&w, w.day - 1, true);
		} else if (v != w.minute) {
			w.minute = v;
			w.second = 59;
		} else if ((v = bit_prev(e->set[F_SEC], w.second)) < 0) {
			w.minute--;
			w.second = 59;
			if (w.minute < 0) {
				w.minute = 59;
				w.hour--;
				if (w.hour < 0)
					wall_set_day(&w, w.day - 1, true);
			}
		} else {
			w.second = v;
			int64_t local = wall_local(&w);
			return local >= lower ? local : CRON_NONE;
		}
	}
	return CRON_NONE;
}

/* ---- DST rules ---- */

/* Whether instant u (local time local) is the second occurrence of a
 * repeated wall-clock time. */
static bool is_repeat(const struct tz *z, int64_t local, int64_t u)
{
	struct wall w;
	struct tz_civil c;
	int64_t at[2];
	wall_from_local(&w, local);
	c = (struct tz_civil){w.year, w.month, w.mday, w.hour, w.minute, w.second, 0};
	return tz_from_civil(z, &c, at) == 2 && at[1] == u;
}

static bool is_skipped(const struct tz *z, int64_t local)
{
	struct wall w;
	struct tz_civil c;
	int64_t at[2];
	wall_from_local(&w, local);
	c = (struct tz_civil){w.year, w.month, w.mday, w.hour, w.minute, w.second, 0};
	return tz_from_civil(z, &c, at) == 0;
}

/* Whether the transition at t, where the offset becomes off, skipped a
 * matching wall-clock time: that one fires at t, the first instant after
 * the gap. */
static bool gap_has_match(const struct cronexpr *e, const struct tz *z, int64_t t, int32_t off)
{
	/* Every-hour entries keep the rhythm of real time instead (Vixie
	 * cron's rule for wildcard jobs): the times the clock jumped over
	 * were never an hour of the day, and the next real one follows. */
	if (e->hour_every)
		return false;
	int32_t before = tz_offset_at(z, t - 1);
	int64_t local = t + before, end = t + off - 1;
	while (off > before && (local = wall_next(e, local, end)) != CRON_NONE) {
		if (is_skipped(z, local))
			return true;
		local++; /* exists after all: an odd zone with close transitions */
	}
	return false;
}

static bool t_in_range(int64_t t)
{
	return t >= -TZ_T_LIMIT && t <= TZ_T_LIMIT;
}

int64_t cronexpr_next(const struct cronexpr *e, const struct tz *z, int64_t after)
{
	if (!t_in_range(after))
		return -1;
	int64_t u = after + 1, stop = after + CRON_SPAN;
	while (u <= stop) {
		int32_t off = tz_offset_at(z, u);
		int64_t end = tz_next_transition(z, u); /* this stretch is [u, end) */
		if (tz_prev_transition(z, u) == u && gap_has_match(e, z, u, off))
			return u;
		int64_t limit = (end <= stop ? end - 1 : stop) + off;
		for (int64_t local = u + off; (local = wall_next(e, local, limit)) != CRON_NONE;) {
			int64_t tick = local - off;
			if (e->hour_every || !is_repeat(z, local, tick))
				return tick;
			/* skip the rest of the repeated stretch, which began at the
			 * transition into this offset */
			int64_t t = tz_prev_transition(z, tick);
			int64_t resume = t == INT64_MIN ? local + 1 : t + tz_offset_at(z, t - 1);
			local = resume > local ? resume : local + 1;
		}
		if (end > stop)
			break;
		u = end;
	}
	return -1;
}

int64_t cronexpr_prev(const struct cronexpr *e, const struct tz *z, int64_t at)
{
	if (!t_in_range(at))
		return -1;
	int64_t u = at, stop = at - CRON_SPAN;
	while (u >= stop) {
		int32_t off = tz_offset_at(z, u);
		int64_t begin = tz_prev_transition(z, u); /* this stretch is [begin, u] */
		int64_t lower = (begin >= stop ? begin : stop) + off;
		int64_t local = wall_prev(e, u + off, lower);
		/* a repeat lies at the start of its stretch: anything earlier in
		 * the stretch is a repeat too */
		if (local != CRON_NONE && (e->hour_every || !is_repeat(z, local, local - off)))
			return local - off;
		if (begin < stop)
			break;
		if (gap_has_match(e, z, begin, off))
			return begin;
		u = begin - 1;
	}
	return -1;
}
