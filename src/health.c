/* health: one predicate, so the CLI and the HTTP endpoint cannot drift. */
#include "health.h"

bool health_beat_is_fresh(double beat, double now, double max_age)
{
	return beat > 0 && now - beat <= max_age;
}
