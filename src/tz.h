/* tz: IANA time zones read from TZif files (RFC 8536, versions 1-4,
 * including the POSIX TZ footer that covers instants after the last
 * transition). Pure apart from reading the zone file once in tz_load; never
 * touches the process-wide TZ or localtime(). */
#ifndef FORQ_TZ_H
#define FORQ_TZ_H

#include <stddef.h>
#include <stdint.h>

struct tz;

/* Loads zone `name` ("UTC", "Europe/Berlin", ...) from $TZDIR or
 * /usr/share/zoneinfo. "UTC" and "Etc/UTC" work without any file. Names that
 * are absolute, contain "..", or are not TZif files are refused. NULL with a
 * message in err ("unknown time zone 'Mars/Base'"). */
struct tz *tz_load(const char *name, char *err, size_t errlen);
void tz_free(struct tz *z);
const char *tz_name(const struct tz *z);

/* UTC offset in seconds (east positive) in effect at UTC instant t. */
int32_t tz_offset_at(const struct tz *z, int64_t t);

/* Broken-down local time for UTC instant t. */
struct tz_civil {
	int year, month, day;   /* month 1-12, day 1-31 */
	int hour, minute, second;
	int wday;               /* 0 = Sunday */
};
void tz_to_civil(const struct tz *z, int64_t t, struct tz_civil *out);

/* The UTC instants whose local time is the wall-clock time w (wday
 * ignored): 1 normally, 2 in a repeated (fall-back) hour (earlier first),
 * 0 in a skipped (spring-forward) gap. Returns the count; out has room
 * for 2. */
int tz_from_civil(const struct tz *z, const struct tz_civil *w, int64_t out[2]);

/* The instants at which the UTC offset changes: the first one after t
 * (INT64_MAX when there is none) and the last one at or before t (INT64_MIN
 * when there is none). Transitions that change only the abbreviation or the
 * DST flag are not offset changes and are skipped. Lets a caller walk the
 * stretches of constant offset, inside which local time runs like UTC. */
int64_t tz_next_transition(const struct tz *z, int64_t t);
int64_t tz_prev_transition(const struct tz *z, int64_t t);

/* Instants further than TZ_T_LIMIT seconds (about three million years) from
 * the epoch are clamped to it, so no year overflows an int. */
#define TZ_T_LIMIT INT64_C(100000000000000)

/* Days since 1970-01-01 for a proleptic Gregorian date, and back. */
int64_t tz_days_from_civil(int year, int month, int day);
void tz_civil_from_days(int64_t days, int *year, int *month, int *day);

#endif
