/* privs: the classic order (supplementary groups, gid, uid) and a check
 * that root cannot be regained, since a silent failure here would leave
 * every job running as root. */
#include <stddef.h>

#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int privs_drop(const char *user, char *err, size_t n)
{
	struct passwd *pw;
	errno = 0;
	if (!(pw = getpwnam(user))) {
		snprintf(err, n, "user '%s': %s", user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (geteuid() != 0) {
		if (pw->pw_uid == geteuid())
			return 0;
		snprintf(err, n, "user '%s': only root can switch users", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		snprintf(err, n, "switching to user '%s': %s", user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		snprintf(err, n, "switching to user '%s': root could be regained", user);
		return -1;
	}
	setenv("HOME", pw->pw_dir, 1);
	setenv("USER", pw->pw_name, 1);
	setenv("LOGNAME", pw->pw_name, 1);
	return 0;
}
