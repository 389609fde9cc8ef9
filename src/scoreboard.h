/* scoreboard: one shared-memory page set, mapped by the master before the
 * first fork, where every worker publishes its state and current job for the
 * master to read without a round trip (TTIN table, titles, heartbeats). */
#ifndef FORQ_SCOREBOARD_H
#define FORQ_SCOREBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "keys.h"

enum sb_state { SB_FREE, SB_BOOTING, SB_IDLE, SB_BUSY, SB_QUIET, SB_STOPPING };

struct sb_cell {
	volatile int32_t state; /* enum sb_state, written by the worker */
	int32_t slot;
	int32_t pid;            /* 0 = cell unused; written by the master */
	uint32_t jobs_done;     /* executions, successful or not (stat:processed) */
	uint32_t jobs_failed;   /* executions that failed (stat:failed) */
	/* Outcomes the worker made but has not written to Redis yet: what a
	 * death now would leave to run again. Written by the worker. */
	volatile int32_t unwritten;
	int32_t timeout_armed;  /* a plugin handler runs under SIGALRM */
	int32_t handler_pid;    /* an exec handler runs (its process group) */
	double job_started;     /* wall clock, when state is SB_BUSY */
	double last_tick;       /* monotonic, worker's last loop turn */
	char job_class[256];
	char jid[128];          /* whole: a longer jid never runs (job_check) */
	/* The running job's unique-lock leases, renewed by the master
	 * (unique.c). The worker writes lock_key and lock_ttl before setting
	 * lock_hold and clears lock_hold first. */
	volatile int32_t lock_hold; /* UNIQUE_HOLD_* bits, 0 = nothing to renew */
	double lock_ttl;            /* seconds a requeued job's lock gets back */
	char lock_key[KEYS_UNIQUE_LOCK_SIZE]; /* forq:unique:<sha1> */
};

struct scoreboard {
	struct sb_cell *cells;
	size_t ncells;
	size_t nused; /* cells [0, nused) have been claimed at some time */
};

/* Maps ncells cells shared with every future child; 0 or -1 (errno). */
int scoreboard_create(struct scoreboard *sb, size_t ncells);
void scoreboard_destroy(struct scoreboard *sb);
/* Master side: claims a free cell for pid (index), or -1 when full. */
int scoreboard_claim(struct scoreboard *sb, pid_t pid, int slot);
void scoreboard_release(struct scoreboard *sb, int cell);
struct sb_cell *scoreboard_cell(const struct scoreboard *sb, int cell);
const char *scoreboard_state_name(enum sb_state s);

#endif
