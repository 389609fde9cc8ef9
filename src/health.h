/* health: the rule `forq health` and the master's /healthz share: a node is
 * healthy while its last heartbeat reached Redis no longer than max_age ago
 * (three missed beats by default). Pure. */
#ifndef FORQ_HEALTH_H
#define FORQ_HEALTH_H

#include <stdbool.h>

#define HEALTH_MAX_AGE 15.0 /* seconds: three missed heartbeats */

/* beat: wall-clock time of the last beat that reached Redis (<= 0: none). */
bool health_beat_is_fresh(double beat, double now, double max_age);

#endif
