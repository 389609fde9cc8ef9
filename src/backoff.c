/* backoff: restart delays. Kept pure so the arithmetic is unit-tested with
 * fixed random numbers instead of timed tests. */
#include "backoff.h"

double backoff_respawn_delay(unsigned n, double rnd)
{
	if (n == 0)
		return 0.0;
	double d = BACKOFF_RESPAWN_MIN;
	for (unsigned i = 1; i < n && d < BACKOFF_RESPAWN_MAX; i++)
		d *= 2.0;
	if (d > BACKOFF_RESPAWN_MAX)
		d = BACKOFF_RESPAWN_MAX;
	d *= 1.0 + BACKOFF_JITTER * (2.0 * rnd - 1.0);
	if (d < BACKOFF_RESPAWN_MIN)
		d = BACKOFF_RESPAWN_MIN;
	if (d > BACKOFF_RESPAWN_MAX)
		d = BACKOFF_RESPAWN_MAX;
	return d;
}

int backoff_is_quick_death(double lifetime)
{
	return lifetime < BACKOFF_QUICK_DEATH;
}
