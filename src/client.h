/* client: the commands that talk to Redis and exit: `forq push`, `forq
 * status`, `forq health` (DESIGN.md §2); and `forq reopen-logs`, which
 * only signals the master. */
#ifndef FORQ_CLIENT_H
#define FORQ_CLIENT_H

#include <stdbool.h>

/* true when argv[1] names a client command. */
bool client_is_command(int argc, char **argv);
/* Runs it; returns the exit status (0, 1, 64 usage, 78 configuration). */
int client_main(int argc, char **argv);

#endif
