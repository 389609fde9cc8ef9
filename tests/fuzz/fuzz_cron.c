/* libFuzzer harness for cronexpr: cronexpr_parse on arbitrary text, and for
 * an accepted expression next/prev around an instant taken from the input
 * in three zones (fixed, whole-hour DST, half-hour DST). Checks the
 * promises of cronexpr.h: next is after, prev at or before, and each is a
 * tick the other one finds again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cronexpr.h"
#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *in, const char *zone, long long t)
{
	fprintf(stderr, "fuzz_cron: %s\n  input: %s\n  zone: %s at %lld\n", what, in, zone, t);
	abort();
}

static struct tz *zones[3];

static void load_zones(void)
{
	const char *names[] = {"UTC", "Europe/Berlin", "Australia/Lord_Howe"};
	char err[256];
	for (int i = 0; i < 3; i++)
		if (!zones[i] && !(zones[i] = tz_load(names[i], err, sizeof(err)))) {
			fprintf(stderr, "fuzz_cron: %s\n", err);
			abort();
		}
}

/* An instant in 1900-2200 from the input's bytes (FNV-1a). */
static int64_t instant(const uint8_t *data, size_t size)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ULL;
	return -2208988800 + (int64_t)(h % 9467107200ULL);
}

static void check_ticks(const struct cronexpr *e, const char *text, int64_t t)
{
	for (int i = 0; i < 3; i++) {
		const struct tz *z = zones[i];
		int64_t n = cronexpr_next(e, z, t), p = cronexpr_prev(e, z, t);
		if (n != -1 && n <= t)
			fail("next not after", text, tz_name(z), t);
		if (p != -1 && p > t)
			fail("prev after at", text, tz_name(z), t);
		if (n != -1 && cronexpr_prev(e, z, n) != n)
			fail("prev(next) is not next", text, tz_name(z), t);
		if (p != -1 && cronexpr_next(e, z, p - 1) != p)
			fail("next(prev - 1) is not prev", text, tz_name(z), t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[256] = "";
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	load_zones();
	struct cronexpr *e = cronexpr_parse(text, err, sizeof(err));
	if (!e && !err[0])
		fail("refused without a message", text, "-", 0);
	if (e) {
		check_ticks(e, text, instant(data, size));
		cronexpr_free(e);
	}
	free(text);
	return 0;
}
