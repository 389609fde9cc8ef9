/* cronexpr: cron expressions and their next tick, pure code.
 *
 * Syntax: 5 fields (minute hour day-of-month month day-of-week) or 6 with a
 * leading seconds field; '*', numbers, lists (a,b), ranges (a-b), steps
 * (* / n, a-b/n, a/n = a to the field's maximum); month names jan-dec and day
 * names sun-sat in any case; day-of-week 0-7 with 0 and 7 both Sunday; macros
 * @yearly @annually @monthly @weekly @daily @midnight @hourly. When both
 * day-of-month and day-of-week are restricted (neither starts with '*') a day
 * matches if either does (Vixie cron); otherwise both must.
 *
 * Time zones and DST (the behaviour of Vixie cron and cronie):
 *  - a wall-clock time that does not exist (spring-forward gap) fires once,
 *    at the first instant after the gap; several such times collapse into
 *    that one tick;
 *  - a wall-clock time that exists twice (fall-back) fires only at its first
 *    occurrence;
 *  - except for entries whose hour field is '*' (every hour): they are
 *    interval-like and follow real time, so they fire at both occurrences of
 *    a repeated time and not at all for times in a gap; an every-minute job
 *    keeps its rhythm through both changes. Only '*' and '*' / 1 count as
 *    every hour; "0-23" or '*' / 2 do not.
 * A gap tick and a real tick at the same instant are one tick.
 */
#ifndef FORQ_CRONEXPR_H
#define FORQ_CRONEXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tz.h"

struct cronexpr;

/* NULL with a message naming the bad field in err, e.g.
 * "hour: 24 is out of range 0-23". */
struct cronexpr *cronexpr_parse(const char *text, char *err, size_t errlen);
void cronexpr_free(struct cronexpr *e);

/* Whether the expression has a seconds field (it can fire more than once a
 * minute); 5-field expressions and macros fire at second 0. */
bool cronexpr_has_seconds(const struct cronexpr *e);

/* The first tick strictly after UTC instant `after` (epoch seconds) in zone
 * z, as UTC epoch seconds; -1 when the expression never matches within 400
 * years (e.g. "0 0 30 2 *"). */
int64_t cronexpr_next(const struct cronexpr *e, const struct tz *z, int64_t after);

/* The last tick at or before `at`, or -1 when none within 400 years.
 * Both return -1 for instants beyond TZ_T_LIMIT. */
int64_t cronexpr_prev(const struct cronexpr *e, const struct tz *z, int64_t at);

#endif
