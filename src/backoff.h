/* backoff: pure delay arithmetic for restarts, no clocks or randomness of
 * its own (the caller passes a uniform random number in [0, 1)). */
#ifndef FORQ_BACKOFF_H
#define FORQ_BACKOFF_H

#define BACKOFF_RESPAWN_MIN 1.0   /* seconds */
#define BACKOFF_RESPAWN_MAX 60.0  /* seconds */
#define BACKOFF_JITTER 0.2        /* +/- 20 % */
#define BACKOFF_QUICK_DEATH 10.0  /* a death this soon after start is a crash */

/* Delay before the n-th delayed restart (n >= 1) of a crash-looping process:
 * 1 s doubling to a 60 s cap, jittered by +/-20 % and kept inside
 * [1 s, 60 s]. n == 0 means the process was healthy: restart at once (0). */
double backoff_respawn_delay(unsigned n, double rnd);

/* true when a process that lived `lifetime` seconds died too soon. */
int backoff_is_quick_death(double lifetime);

#endif
