/* tz: time zones from TZif files (RFC 8536) and their POSIX TZ footer.
 * Loading reads one file; everything after is arithmetic on the loaded
 * table, so the process TZ, tzset() and localtime() are never involved. */
#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"
#define TZ_FILE_MAX (1024 * 1024) /* the largest real zone is under 4 KiB */
#define TZ_NAME_MAX 255
#define TZ_DAY 86400
/* RFC 8536 3.2: utoff SHOULD be in -89999..93599; we insist, so every
 * instant with a given local time lies within TZ_OFF_WINDOW of it. */
#define TZ_OFF_MIN (-89999)
#define TZ_OFF_MAX 93599
#define TZ_OFF_WINDOW (26 * 3600)

enum rule_kind { RULE_JULIAN1, RULE_ZERO, RULE_MWD };

/* One half of a POSIX TZ rule: Jn, n or Mm.w.d, then a local time of day
 * (RFC 8536 3.3.1 lets it run from -167 to 167 hours). */
struct tz_rule {
	enum rule_kind kind;
	int month, week, day; /* day is n for J and plain n, weekday for M */
	int32_t time;
};

/* The footer: a fixed offset, or std/dst offsets with the rule switching
 * between them. Offsets are east positive, unlike POSIX. */
struct tz_footer {
	bool present, has_dst;
	int32_t std_off, dst_off;
	struct tz_rule start, end;
};

struct tz {
	char *name;
	/* Transitions that change the offset, ascending, and the offset from
	 * each on; off0 holds before the first. */
	size_t n;
	int64_t *at;
	int32_t *off;
	int32_t off0;
	/* The footer governs instants after the file's last transition
	 * (footer_from), INT64_MIN when the file lists none. */
	struct tz_footer ft;
	int64_t footer_from;
};

/* ---- calendar arithmetic (Howard Hinnant's days_from_civil) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t clamp_t(int64_t t)
{
	return t > TZ_T_LIMIT ? TZ_T_LIMIT : t < -TZ_T_LIMIT ? -TZ_T_LIMIT : t;
}

int64_t tz_days_from_civil(int year, int month, int day)
{
	int64_t y = (int64_t)year - (month <= 2);
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t mp = (month + 9) % 12;
	int64_t doy = (153 * mp + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int *year, int *month, int *day)
{
	const int64_t lim = TZ_T_LIMIT / TZ_DAY + 1;
	days = days > lim ? lim : days < -lim ? -lim : days;
	int64_t z = days + 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1);
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = (int)(yoe + era * 400 + (m <= 2));
	*month = m;
	*day = d;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int year_of(int64_t t)
{
	int y, m, d;
	tz_civil_from_days(floor_div(t, TZ_DAY), &y, &m, &d);
	return y;
}

/* ---- the POSIX TZ footer ---- */

/* Local seconds since the epoch at which rule r fires in year y. */
static int64_t rule_local(const struct tz_rule *r, int y)
{
	int64_t jan1 = tz_days_from_civil(y, 1, 1), days;
	if (r->kind == RULE_JULIAN1) /* 1-365, February 29 never counted */
		days = jan1 + r->day - 1 + (is_leap(y) && r->day >= 60);
	else if (r->kind == RULE_ZERO)
		days = jan1 + r->day;
	else {
		int64_t first = tz_days_from_civil(y, r->month, 1);
		int wd_first = (int)((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
		int d = 1 + (r->day - wd_first + 7) % 7 + (r->week - 1) * 7;
		while (d > days_in_month(y, r->month)) /* week 5 means the last */
			d -= 7;
		days = first + d - 1;
	}
	return days * TZ_DAY + r->time;
}

struct tz_event {
	int64_t at;
	int32_t to;
	bool to_dst;
};

/* The footer's switches in years y0..y1 (at most 8), sorted. On a tie the
 * switch to standard time goes first so that "all year DST" rules such as
 * EST5EDT,0/0,J365/25 stay in DST. */
static int footer_events(const struct tz_footer *f, int y0, int y1, struct tz_event *ev)
{
	int n = 0;
	for (int y = y0; y <= y1; y++) {
		/* each switch is written in the local time in force before it */
		int64_t start = rule_local(&f->start, y) - f->std_off;
		int64_t end = rule_local(&f->end, y) - f->dst_off;
		ev[n++] = (struct tz_event){start, f->dst_off, true};
		ev[n++] = (struct tz_event){end, f->std_off, false};
	}
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0; j--) {
			struct tz_event *a = &ev[j - 1], *b = &ev[j];
			if (a->at < b->at || (a->at == b->at && !a->to_dst))
				break;
			struct tz_event tmp = *a;
			*a = *b;
			*b = tmp;
		}
	return n;
}

static int32_t footer_offset(const struct tz_footer *f, int64_t t)
{
	struct tz_event ev[6];
	if (!f->has_dst)
		return f->std_off;
	int y = year_of(t + f->std_off);
	int n = footer_events(f, y - 1, y + 1, ev);
	int32_t off = ev[0].to_dst ? f->std_off : f->dst_off;
	for (int i = 0; i < n && ev[i].at <= t; i++)
		off = ev[i].to;
	return off;
}

/* [+-]h[h[h]][:mm[:ss]] with hours up to maxh; NULL when malformed. */
static const char *parse_hms(const char *s, int maxh, int32_t *out)
{
	int sign = 1, part[3] = {0, 0, 0}, nparts = 0;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	do {
		int v = 0, digits = 0;
		if (nparts)
			s++; /* the ':' */
		while (isdigit((unsigned char)*s) && digits < 3) {
			v = v * 10 + (*s++ - '0');
			digits++;
		}
		if (!digits || (nparts && (digits > 2 || v > 59)) || (!nparts && v > maxh))
			return NULL;
		part[nparts++] = v;
	} while (*s == ':' && nparts < 3);
	*out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	return s;
}

/* An abbreviation: three or more letters, or <...> quoted. */
static const char *parse_abbr(const char *s)
{
	const char *p = s;
	if (*p == '<') {
		while (*++p && *p != '>')
			if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-')
				return NULL;
		return *p == '>' && p - s >= 4 ? p + 1 : NULL;
	}
	while (isalpha((unsigned char)*p))
		p++;
	return p - s >= 3 ? p : NULL;
}

static const char *parse_num(const char *s, int min, int max, int *out)
{
	int v = 0, digits = 0;
	while (isdigit((unsigned char)*s) && digits < 4) {
		v = v * 10 + (*s++ - '0');
		digits++;
	}
	if (!digits || v < min || v > max)
		return NULL;
	*out = v;
	return s;
}

/* date[/time]: Jn, n or Mm.w.d; the time defaults to 02:00. */
static const char *parse_rule(const char *s, struct tz_rule *r)
{
	r->time = 7200;
	if (*s == 'J') {
		r->kind = RULE_JULIAN1;
		s = parse_num(s + 1, 1, 365, &r->day);
	} else if (*s == 'M') {
		r->kind = RULE_MWD;
		s = parse_num(s + 1, 1, 12, &r->month);
		s = s && *s == '.' ? parse_num(s + 1, 1, 5, &r->week) : NULL;
		s = s && *s == '.' ? parse_num(s + 1, 0, 6, &r->day) : NULL;
	} else {
		r->kind = RULE_ZERO;
		s = parse_num(s, 0, 365, &r->day);
	}
	if (s && *s == '/')
		s = parse_hms(s + 1, 167, &r->time);
	return s;
}

static bool off_is_sane(int32_t off)
{
	return off >= TZ_OFF_MIN && off <= TZ_OFF_MAX;
}

/* std offset [dst [offset] [,start[/time],end[/time]]]; 0 or -1. */
static int parse_footer(const char *s, struct tz_footer *f)
{
	int32_t v;
	memset(f, 0, sizeof(*f));
	if (!*s)
		return 0; /* an empty footer: the last transition holds forever */
	if (!(s = parse_abbr(s)) || !(s = parse_hms(s, 24, &v)))
		return -1;
	f->present = true;
	f->std_off = -v; /* POSIX counts west positive */
	if (!*s)
		return 0;
	f->has_dst = true;
	if (!(s = parse_abbr(s)))
		return -1;
	f->dst_off = f->std_off + 3600;
	if (*s && *s != ',') {
		if (!(s = parse_hms(s, 24, &v)))
			return -1;
		f->dst_off = -v;
	}
	if (!*s) { /* no rule: the US one, as tzcode assumes */
		f->start = (struct tz_rule){RULE_MWD, 3, 2, 0, 7200};
		f->end = (struct tz_rule){RULE_MWD, 11, 1, 0, 7200};
		return off_is_sane(f->dst_off) ? 0 : -1;
	}
	if (*s != ',' || !(s = parse_rule(s + 1, &f->start)) || *s != ',' ||
	    !(s = parse_rule(s + 1, &f->end)) || *s)
		return -1;
	return off_is_sane(f->dst_off) ? 0 : -1;
}

/* ---- TZif decoding ---- */

struct tzif_hdr {
	char version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The 44-byte header at p, and the size of the data block after it when
 * times take tsize bytes; 0 when the header is malformed. */
static size_t read_header(const unsigned char *p, size_t len, int tsize, struct tzif_hdr *h)
{
	if (len < 44 || memcmp(p, "TZif", 4))
		return 0;
	h->version = (char)p[4];
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	if (h->timecnt > len || h->typecnt > 256 || h->leapcnt > len || h->charcnt > len ||
	    !h->typecnt || !h->charcnt || (h->isutcnt && h->isutcnt != h->typecnt) ||
	    (h->isstdcnt && h->isstdcnt != h->typecnt))
		return 0;
	size_t need = (size_t)h->timecnt * (size_t)(tsize + 1) + (size_t)h->typecnt * 6 +
		      h->charcnt + (size_t)h->leapcnt * (size_t)(tsize + 4) + h->isstdcnt +
		      h->isutcnt;
	return need <= len - 44 ? need : 0;
}

/* Fills z's transition table from the data block d; leap-second records
 * are ignored ("right/" zones then read like their POSIX twins). */
static int decode_data(const unsigned char *d, const struct tzif_hdr *h, int tsize, struct tz *z)
{
	const unsigned char *idx = d + (size_t)h->timecnt * (size_t)tsize;
	const unsigned char *types = idx + h->timecnt;
	int32_t prev;
	for (uint32_t i = 0; i < h->typecnt; i++)
		if (!off_is_sane((int32_t)be32(types + 6 * i)))
			return -1;
	z->off0 = prev = (int32_t)be32(types);
	z->at = xcalloc(h->timecnt + 1, sizeof(*z->at));
	z->off = xcalloc(h->timecnt + 1, sizeof(*z->off));
	z->footer_from = INT64_MIN;
	for (uint32_t i = 0; i < h->timecnt; i++) {
		int64_t t = tsize == 8 ? be64(d + 8 * i) : (int32_t)be32(d + 4 * i);
		if ((i && t <= z->footer_from) || idx[i] >= h->typecnt)
			return -1;
		z->footer_from = t;
		int32_t off = (int32_t)be32(types + 6 * idx[i]);
		if (off == prev)
			continue; /* only the abbreviation or isdst changed */
		z->at[z->n] = t;
		z->off[z->n++] = prev = off;
	}
	return 0;
}

/* The footer "\nTZ\n" that ends a version 2+ file at p (len bytes left). */
static int decode_footer(const unsigned char *p, size_t len, struct tz *z)
{
	char buf[128];
	const unsigned char *nl;
	if (len < 2 || p[0] != '\n' || !(nl = memchr(p + 1, '\n', len - 1)) ||
	    (size_t)(nl - p - 1) >= sizeof(buf))
		return -1;
	memcpy(buf, p + 1, (size_t)(nl - p - 1));
	buf[nl - p - 1] = '\0';
	return parse_footer(buf, &z->ft);
}

/* Version 1 files have only 32-bit data; later ones repeat it with 64-bit
 * times after the first block, followed by the footer. */
static int decode_tzif(const unsigned char *buf, size_t len, struct tz *z)
{
	struct tzif_hdr h;
	size_t n = read_header(buf, len, 4, &h);
	if (!n)
		return -1;
	if (h.version == '\0')
		return decode_data(buf + 44, &h, 4, z);
	size_t off = 44 + n;
	size_t n2 = read_header(buf + off, len - off, 8, &h);
	if (!n2 || decode_data(buf + off + 44, &h, 8, z))
		return -1;
	off += 44 + n2;
	return decode_footer(buf + off, len - off, z);
}

static bool name_is_builtin_utc(const char *name)
{
	return !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC") || !strcmp(name, "GMT");
}

static bool name_is_safe(const char *name)
{
	return name[0] && name[0] != '/' && !strstr(name, "..") && strlen(name) <= TZ_NAME_MAX;
}

/* The whole file into a fresh buffer; NULL with errno set. */
static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *buf = xmalloc(TZ_FILE_MAX + 1);
	*len = fread(buf, 1, TZ_FILE_MAX + 1, f);
	int failed = ferror(f), saved = errno;
	fclose(f);
	if (failed || *len > TZ_FILE_MAX) {
		free(buf);
		errno = failed ? saved : EFBIG;
		return NULL;
	}
	return buf;
}

struct tz *tz_load(const char *name, char *err, size_t errlen)
{
	struct tz *z = xcalloc(1, sizeof(*z));
	unsigned char *buf = NULL;
	char *path = NULL;
	size_t len;
	z->name = xstrdup(name);
	z->footer_from = INT64_MIN;
	if (name_is_builtin_utc(name))
		return z;
	if (!name_is_safe(name)) {
		util_seterr(err, errlen, "bad time zone name '%.64s'", name);
		goto out_free;
	}
	const char *dir = getenv("TZDIR");
	path = xasprintf("%s/%s", dir && *dir ? dir : TZ_DIR_DEFAULT, name);
	if (!(buf = read_file(path, &len))) {
		util_seterr(err, errlen, "unknown time zone '%.64s'", name);
		goto out_free;
	}
	if (len < 4 || memcmp(buf, "TZif", 4)) {
		util_seterr(err, errlen, "time zone '%.64s' is not a TZif file", name);
		goto out_free;
	}
	if (decode_tzif(buf, len, z)) {
		util_seterr(err, errlen, "time zone '%.64s': corrupt TZif file", name);
		goto out_free;
	}
	free(path);
	free(buf);
	return z;
out_free:
	free(path);
	free(buf);
	tz_free(z);
	return NULL;
}

void tz_free(struct tz *z)
{
	if (!z)
		return;
	free(z->name);
	free(z->at);
	free(z->off);
	free(z);
}

const char *tz_name(const struct tz *z)
{
	return z->name;
}

/* ---- queries ---- */

static bool in_footer(const struct tz *z, int64_t t)
{
	return z->ft.present && t > z->footer_from;
}

/* The index of the last table transition at or before t, or -1. */
static ptrdiff_t table_find(const struct tz *z, int64_t t)
{
	size_t lo = 0, hi = z->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->at[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

int32_t tz_offset_at(const struct tz *z, int64_t t)
{
	t = clamp_t(t);
	if (in_footer(z, t))
		return footer_offset(&z->ft, t);
	ptrdiff_t i = table_find(z, t);
	return i < 0 ? z->off0 : z->off[i];
}

static bool changes_at(const struct tz *z, int64_t t)
{
	return tz_offset_at(z, t) != tz_offset_at(z, t - 1);
}

int64_t tz_next_transition(const struct tz *z, int64_t t)
{
	struct tz_event ev[8];
	t = clamp_t(t);
	if (!in_footer(z, t)) {
		ptrdiff_t i = table_find(z, t) + 1;
		if ((size_t)i < z->n)
			return z->at[i];
		if (!z->ft.present)
			return INT64_MAX;
		/* the footer may disagree with the table where it takes over */
		if (changes_at(z, z->footer_from + 1))
			return z->footer_from + 1;
	}
	if (!z->ft.has_dst || t >= TZ_T_LIMIT)
		return INT64_MAX;
	int y = year_of(t);
	int n = footer_events(&z->ft, y - 1, y + 2, ev);
	for (int i = 0; i < n; i++)
		if (ev[i].at > t && in_footer(z, ev[i].at - 1) && changes_at(z, ev[i].at))
			return ev[i].at;
	return INT64_MAX; /* a rule that never changes the offset */
}

int64_t tz_prev_transition(const struct tz *z, int64_t t)
{
	struct tz_event ev[8];
	t = clamp_t(t);
	if (in_footer(z, t) && z->ft.has_dst && t > -TZ_T_LIMIT) {
		int y = year_of(t);
		int n = footer_events(&z->ft, y - 2, y + 1, ev);
		for (int i = n - 1; i >= 0; i--)
			if (ev[i].at <= t && in_footer(z, ev[i].at - 1) && changes_at(z, ev[i].at))
				return ev[i].at;
	}
	if (in_footer(z, t) && z->footer_from != INT64_MIN && changes_at(z, z->footer_from + 1))
		return z->footer_from + 1;
	ptrdiff_t i = table_find(z, t < z->footer_from ? t : z->footer_from);
	return i < 0 ? INT64_MIN : z->at[i];
}

void tz_to_civil(const struct tz *z, int64_t t, struct tz_civil *out)
{
	t = clamp_t(t);
	int64_t local = t + tz_offset_at(z, t);
	int64_t days = floor_div(local, TZ_DAY), secs = local - days * TZ_DAY;
	tz_civil_from_days(days, &out->year, &out->month, &out->day);
	out->hour = (int)(secs / 3600);
	out->minute = (int)(secs / 60 % 60);
	out->second = (int)(secs % 60);
	out->wday = (int)((days + 4) % 7 + 7) % 7;
}

/* Walks the stretches of constant offset around local time w: in each, at
 * most one instant has that local time, and stretches come in UTC order. */
int tz_from_civil(const struct tz *z, const struct tz_civil *w, int64_t out[2])
{
	int64_t local = tz_days_from_civil(w->year, w->month, w->day) * TZ_DAY +
			(int64_t)w->hour * 3600 + (int64_t)w->minute * 60 + w->second;
	int64_t t = local - TZ_OFF_WINDOW, hi = local + TZ_OFF_WINDOW;
	int n = 0;
	while (t <= hi && n < 2) {
		int64_t end = tz_next_transition(z, t);
		int64_t u = local - tz_offset_at(z, t);
		if (u >= t && u < end)
			out[n++] = u;
		if (end == INT64_MAX)
			break;
		t = end;
	}
	return n;
}
