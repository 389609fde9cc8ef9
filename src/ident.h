/* ident: identities and random ids in Sidekiq's formats (research §1.4). */
#ifndef FORQ_IDENT_H
#define FORQ_IDENT_H

#include <stddef.h>

/* Lowercase hex of nbytes random bytes from the kernel into out
 * (room for 2*nbytes+1). */
void ident_random_hex(char *out, size_t nbytes);
/* "<hostname>:<pid>:<12 hex>": hostname is $DYNO if set, else the host
 * name, with any ':' replaced by '-'. */
void ident_node(char *out, size_t n);
/* This host's name as used in identities. */
void ident_hostname(char *out, size_t n);

#endif
