/* process: fork protocol. Signals stay blocked across fork() so no handler
 * of the parent's ever runs in the child, and the parent never misses a
 * SIGCHLD for a child it has not recorded yet. */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static void child_setup(void)
{
	struct sigaction dfl;
	int fd;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL); /* EINVAL for glibc's reserved ones */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if ((fd = open("/dev/null", O_RDONLY)) >= 0) {
		if (fd != STDIN_FILENO) {
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
	}
	util_reseed();
}

pid_t process_spawn(process_child_fn fn, void *arg)
{
	sigset_t all, old;
	pid_t pid;
	int saved;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		child_setup();
		exit(fn(arg));
	}
	saved = errno;
	if (pid > 0)
		setpgid(pid, pid); /* both sides, so a kill(-pid) right now works */
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return pid;
}

static void exec_child(char *const *argv, char *const *env, const int p[3][2])
{
	child_setup();
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* a handler never outlives its worker */
	dup2(p[0][0], STDIN_FILENO);
	dup2(p[1][1], STDOUT_FILENO);
	dup2(p[2][1], STDERR_FILENO);
	close_range(3, ~0U, 0); /* the Redis socket and loop fds are not the job's */
	for (size_t i = 0; env && env[i]; i++)
		putenv(env[i]);
	process_unblock_signals();
	execvp(argv[0], argv);
	dprintf(STDERR_FILENO, "cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

pid_t process_spawn_exec(char *const *argv, char *const *env, int *in_fd, int *out_fd,
			 int *err_fd)
{
	int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	sigset_t all, old;
	pid_t pid;
	int saved;

	for (int i = 0; i < 3; i++)
		if (pipe2(p[i], O_CLOEXEC))
			goto out_close;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		exec_child(argv, env, (const int(*)[2])p);
	saved = errno;
	if (pid > 0)
		setpgid(pid, pid);
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	if (pid < 0)
		goto out_close;
	close(p[0][0]);
	close(p[1][1]);
	close(p[2][1]);
	*in_fd = p[0][1];
	*out_fd = p[1][0];
	*err_fd = p[2][0];
	fcntl(*in_fd, F_SETFL, O_NONBLOCK);
	fcntl(*out_fd, F_SETFL, O_NONBLOCK);
	fcntl(*err_fd, F_SETFL, O_NONBLOCK);
	return pid;
out_close:
	saved = errno;
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++)
			if (p[i][k] >= 0)
				close(p[i][k]);
	errno = saved;
	return -1;
}

void process_unblock_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void process_signal_group(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	if (kill(-pid, sig) && errno == ESRCH)
		kill(pid, sig);
}

bool process_parent_is_gone(pid_t expected_parent)
{
	return getppid() != expected_parent;
}

void process_become_subreaper(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

const char *process_describe_status(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "signal %s%s", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?",
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, n, "status %d", status);
	return buf;
}
