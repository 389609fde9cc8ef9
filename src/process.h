/* process: the only module that calls fork(). It owns the fork protocol of
 * DESIGN.md: signals blocked around fork, the child's dispositions reset, its
 * own process group, a parent-death signal and stdin from /dev/null. */
#ifndef FORQ_PROCESS_H
#define FORQ_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Runs in the child with every signal still blocked (the child unblocks
 * once its own handlers are in place, see process_unblock_signals). Its
 * return value is the child's exit status. */
typedef int (*process_child_fn)(void *arg);

/* How process_spawn forks: fork(2) unless a plugin provides its own
 * (forq_host.set_fork: Ruby's fork protocol). fn(user) is called with every
 * signal blocked and must behave like fork(2). NULL restores fork(2). */
typedef pid_t (*process_fork_fn)(void *user);
void process_set_fork_fn(process_fork_fn fn, void *user);
bool process_has_fork_fn(void);

/* Forks a child that runs fn(arg) and exits with its return value.
 * Returns the child's pid in the parent, or -1 (errno) if fork failed. */
pid_t process_spawn(process_child_fn fn, void *arg);

/* Starts argv (PATH searched, no shell) in its own process group with
 * stdin, stdout and stderr on new pipes (*in_fd is our write end, *out_fd
 * and *err_fd our read ends; all non-blocking and close-on-exec) and the
 * extra environment env ("NAME=value", NULL-terminated), every signal at
 * its default and no descriptor of ours beyond the three. Returns its pid,
 * or -1 (errno) - also when the program cannot be executed. */
pid_t process_spawn_exec(char *const *argv, char *const *env, int *in_fd, int *out_fd,
			 int *err_fd);

void process_unblock_signals(void);
/* Sends sig to the child's whole process group (and to pid itself in case it
 * has not yet made its group). */
void process_signal_group(pid_t pid, int sig);
/* In a child: sig arrives when the parent dies (also when it already has);
 * the setting survives exec. */
void process_die_with_parent(int sig, pid_t expected_parent);
/* true when the process that forked us is gone. */
bool process_parent_is_gone(pid_t expected_parent);
/* Makes this process adopt orphaned descendants (as PID 1 does anyway). */
void process_become_subreaper(void);
/* "exit 3" / "signal KILL" for logs. */
const char *process_describe_status(int status, char *buf, size_t n);

#endif
