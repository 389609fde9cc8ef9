/* privs: dropping root to the configured user after start. */
#ifndef FORQ_PRIVS_H
#define FORQ_PRIVS_H

/* When running as root, switches to user (groups, gid, uid) for good and
 * sets HOME/USER/LOGNAME. Not root: 0 if user is already us, else -1.
 * -1 with a message in err on any failure. */
int privs_drop(const char *user, char *err, size_t errlen);

#endif
