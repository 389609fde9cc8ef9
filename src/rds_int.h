/* rds_int: what the files of the rds module share (rds.c: replies and the
 * synchronous side; rds_async.c: the libev side; rds_conn.c: the byte
 * stream). Not for other modules. hiredis is used only for what it does
 * without I/O: formatting commands and parsing replies (redisReader). */
#ifndef FORQ_RDS_INT_H
#define FORQ_RDS_INT_H

#include <stddef.h>

#include "rdsurl.h"

#define RDS_BACKOFF_MIN 0.1
#define RDS_BACKOFF_MAX 10.0
#define RDS_CONNECT_TIMEOUT 5.0
#define RDS_READ_CHUNK 16384

/* hiredis's formatter and reader fail only when memory runs out: abort,
 * as xmalloc does. */
_Noreturn void rds_oom(void);

/* The commands sent first on every connection (AUTH, SELECT, and a PING
 * over TLS so that a server refusing our certificate after the handshake
 * is found at connect time), formatted into *buf (caller frees).
 * Returns how many replies to expect. */
int rds_handshake_format(const struct rdsurl *u, char **buf, size_t *len);
/* 0 when reply i of the handshake (a redisReply) says yes, or -1 with a
 * message in err that never contains the password. */
int rds_handshake_check(const struct rdsurl *u, int i, const void *reply, char *err, size_t n);

#endif
