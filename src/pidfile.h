/* pidfile: writes and removes the master's pid file. */
#ifndef FORQ_PIDFILE_H
#define FORQ_PIDFILE_H

#include <sys/types.h>

/* 0, or -1 with errno set. */
int pidfile_write(const char *path, pid_t pid);
/* Removes it only if it still holds pid (a newer forq may own it now). */
void pidfile_remove(const char *path, pid_t pid);

#endif
