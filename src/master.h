/* master: the supervisor process. Owns the worker slots, the signals and the
 * fork/respawn/stop state machine (DESIGN.md sections 1, 5, 7). */
#ifndef FORQ_MASTER_H
#define FORQ_MASTER_H

#include "cli.h"
#include "config.h"

/* Runs the master until a requested stop (returns 0) or a fatal condition
 * (1: every initial worker died before becoming ready; 78: configuration).
 * Takes ownership of cfg. cli is kept for reloads (HUP). */
int master_run(struct config *cfg, const struct cli *cli);

#endif
