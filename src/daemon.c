/*
 * daemon: detaching, the pidfile and the privilege drop.
 *
 * Under systemd none of this runs: echod stays in the foreground, systemd
 * tracks the main pid and DynamicUser= makes it unprivileged to begin
 * with.  This is for init systems that expect the classic daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "account.h"
#include "daemon.h"
#include "exitcodes.h"

#define READY_BYTE 'R'
#define HOLDER_WAIT_MS 1000 /* for a starting holder to write its pid */
#define HOLDER_POLL_MS 20

/*
 * Every signal the master acts on.  Blocked from main()'s first line, so
 * one that arrives before the master's signalfd exists waits for it
 * instead of killing echod (SIGHUP's default action is to terminate).
 */
static const int early_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP,
	SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGQUIT };

/* The mask echod was started with: the -d parent waits under it. */
static sigset_t entry_mask;

int
daemon_early_setup(void)
{
	struct sigaction sa;
	sigset_t set;
	size_t i;
	int fd, nfd;

	sigemptyset(&set);
	for (i = 0; i < sizeof(early_signals) / sizeof(early_signals[0]); i++)
		sigaddset(&set, early_signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, &entry_mask) == -1)
		return -1;
	/* A log reader that went away must not end echod by SIGPIPE. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		return -1;
	/*
	 * A closed 0, 1 or 2 would be handed to the first socket or file
	 * opened: a listener on 2 gets the log lines, one on 0 gets
	 * /dev/null dup2'ed over it by the detach.  Fill them first.
	 */
	for (fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		if ((nfd = open("/dev/null", O_RDWR | O_NOCTTY)) == -1)
			return -1;
		/* open() returns the lowest free descriptor: this one. */
		if (nfd != fd) {
			if (dup2(nfd, fd) == -1)
				return -1;
			close(nfd);
		}
	}
	return 0;
}

int
daemon_absolute_path(const char *path, const char *cwd, char *out,
    size_t len)
{
	int n;

	while (path[0] == '.' && path[1] == '/')
		for (path += 2; *path == '/'; path++)
			;
	if (path[0] == '/' || cwd == NULL)
		n = snprintf(out, len, "%s", path);
	else
		n = snprintf(out, len, "%s%s%s", cwd,
		    cwd[0] && cwd[strlen(cwd) - 1] == '/' ? "" : "/", path);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* The parent: wait for the child's word, or for its death. */
static void __attribute__((noreturn))
wait_child(pid_t pid, int fd)
{
	char c;
	ssize_t n;
	int st;

	/* Waiting, the parent is interruptible as echod was at its start. */
	(void)sigprocmask(SIG_SETMASK, &entry_mask, NULL);
	do
		n = read(fd, &c, 1);
	while (n == -1 && errno == EINTR);
	if (n == 1 && c == READY_BYTE)
		_exit(ECHOD_EXIT_OK);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		_exit(WEXITSTATUS(st));
	fprintf(stderr, "echod: the daemon ended before it was ready; "
	    "see the system log\n");
	_exit(ECHOD_EXIT_FAILURE);
}

int
daemon_detach(char *err, size_t errlen)
{
	int p[2], fd;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		snprintf(err, errlen, "cannot detach: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		wait_child(pid, p[0]);
	}
	close(p[0]);
	if (setsid() == -1 || chdir("/") == -1 ||
	    (fd = open("/dev/null", O_RDWR | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "cannot detach: %s", strerror(errno));
		close(p[1]);
		return -1;
	}
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return p[1];
}

void
daemon_ready(int fd)
{
	char c = READY_BYTE;

	if (fd == -1)
		return;
	if (write(fd, &c, 1) != 1) {
		/* The parent is gone: nobody is waiting. */
	}
	close(fd);
}

/*
 * The pid the lock's holder wrote.  A holder that is still starting has
 * locked the file but writes its pid only once detached: wait a moment
 * for it rather than name a pid that is about to be gone.
 */
static void
read_holder(int fd, char *pid, size_t len)
{
	struct timespec ts = { 0, HOLDER_POLL_MS * 1000000L };
	ssize_t n;
	int i;

	for (i = 0; i <= HOLDER_WAIT_MS / HOLDER_POLL_MS; i++) {
		n = pread(fd, pid, len - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (pid[0] != '\0')
			return;
		(void)nanosleep(&ts, NULL);
	}
}

int
daemon_pidfile_open(const char *path, char *err, size_t errlen)
{
	char old[32];
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1) {
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		read_holder(fd, old, sizeof(old));
		snprintf(err, errlen, "pidfile %s is locked: echod is already "
		    "running (pid %s)", path, old[0] ? old : "not written yet: "
		    "it is still starting");
		close(fd);
		return -1;
	}
	/* Ours now; a stale pid must not outlive the lock it lost. */
	if (ftruncate(fd, 0) == -1) {
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
daemon_pidfile_write(int fd)
{
	char buf[32];
	int n;

	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -1;
	return 0;
}

void
daemon_pidfile_remove(const char *path, int fd)
{
	if (fd == -1)
		return;
	/* After the privilege drop /run may no longer be ours to change. */
	if (unlink(path) == -1 && ftruncate(fd, 0) == -1) {
		/* Nothing more we can do; the lock goes with the fd. */
	}
	close(fd);
}

int
daemon_drop_privileges(const struct conf *c, char *what, size_t whatlen,
    char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0) {
		snprintf(what, whatlen, "running as uid %d (not started as "
		    "root: user and group are not used)", (int)geteuid());
		return 0;
	}
	if (account_resolve(c->user, c->group, &uid, &gid, err,
	    errlen) == -1)
		return -1;
	if (uid == 0) {
		if (!c->allow_root) {
			snprintf(err, errlen, "refusing to run as root: set "
			    "user to an unprivileged user, or allow_root = "
			    "true");
			return -1;
		}
		if (setgroups(0, NULL) == -1 ||
		    setresgid(gid, gid, gid) == -1) {
			snprintf(err, errlen, "cannot become group %d: %s",
			    (int)gid, strerror(errno));
			return -1;
		}
		snprintf(what, whatlen, "running as root (allow_root = true), "
		    "group %d, no supplementary groups", (int)gid);
		return 0;
	}
	if (setgroups(0, NULL) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "cannot become %s: %s", c->user,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) != -1) {
		snprintf(err, errlen, "could become root again after the drop");
		return -1;
	}
	/* Keep core dumps possible: a hung worker gets SIGABRT for one. */
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	snprintf(what, whatlen, "running as user %s (uid %d), group %d, "
	    "no supplementary groups", c->user, (int)uid, (int)gid);
	return 0;
}

void
daemon_close_inherited(void)
{
	int n = sd_listen_fds(0); /* systemd's sockets: 3 .. 3+n-1 */

	if (n < 0)
		n = 0;
	(void)close_range(SD_LISTEN_FDS_START + (unsigned)n, ~0U, 0);
}
