/*
 * check_daemon: daemon.c's own decisions, without starting echod: the
 * early set-up (descriptors 0-2, signals), the absolute -c path, the
 * pidfile's lock and content, and the group a root user keeps.  Whatever
 * changes the process (closing 0-2, setresgid) runs in a forked child.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "harness.h"
#include "suites.h"

/* Run fn in a child; its exit status (0 = passed), or -1. */
static int
in_child(int (*fn)(void))
{
	pid_t pid;
	int st;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0)
		_exit(fn());
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- daemon_absolute_path ---- */

static const struct {
	const char *path, *cwd, *want;
} abs_cases[] = {
	{ "echod.conf", "/etc/echod", "/etc/echod/echod.conf" },
	{ "./echod.conf", "/etc/echod", "/etc/echod/echod.conf" },
	{ ".//./echod.conf", "/tmp", "/tmp/echod.conf" },
	{ "conf/echod.conf", "/srv/", "/srv/conf/echod.conf" },
	{ "../x.conf", "/a/b", "/a/b/../x.conf" },
	{ "x.conf", "/", "/x.conf" },
	{ "/etc/echod.conf", "/tmp", "/etc/echod.conf" },
	{ "./", "/tmp", "/tmp/" },
};

START_TEST(absolute_path_table)
{
	char out[128];

	ck_assert_int_eq(daemon_absolute_path(abs_cases[_i].path,
	    abs_cases[_i].cwd, out, sizeof(out)), 0);
	ck_assert_str_eq(out, abs_cases[_i].want);
}
END_TEST

START_TEST(absolute_path_too_long)
{
	char out[16];

	errno = 0;
	ck_assert_int_eq(daemon_absolute_path("echod.conf", "/etc/echod",
	    out, sizeof(out)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(daemon_absolute_path("/etc/echod/e.conf", "/",
	    out, sizeof(out)), -1);
}
END_TEST

/* ---- daemon_early_setup ---- */

static int
is_dev_null(int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat("/dev/null", &b) == 0 &&
	    S_ISCHR(a.st_mode) && a.st_rdev == b.st_rdev;
}

static int
early_fills_closed_fds(void)
{
	int fd;

	close(STDIN_FILENO);
	close(STDERR_FILENO);
	if (daemon_early_setup() == -1)
		return 10;
	if (!is_dev_null(STDIN_FILENO) || !is_dev_null(STDERR_FILENO))
		return 11;
	/* The next descriptor opened is 3 or above, never 0-2. */
	if ((fd = open("/dev/null", O_RDONLY)) <= STDERR_FILENO)
		return 12;
	return 0;
}

static int
early_all_closed(void)
{
	close(0);
	close(1);
	close(2);
	if (daemon_early_setup() == -1)
		return 10;
	return is_dev_null(0) && is_dev_null(1) && is_dev_null(2) ? 0 : 11;
}

static int
early_keeps_open_fds(void)
{
	struct stat before, after;

	if (fstat(STDOUT_FILENO, &before) == -1 || daemon_early_setup() == -1 ||
	    fstat(STDOUT_FILENO, &after) == -1)
		return 10;
	return before.st_ino == after.st_ino && before.st_dev == after.st_dev ?
	    0 : 11;
}

/* SIGHUP, SIGTERM... wait for the master's signalfd; SIGPIPE is ignored. */
static int
early_blocks_signals(void)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2,
		SIGTTIN, SIGTTOU, SIGQUIT, SIGCHLD };
	struct sigaction sa;
	sigset_t pending;
	size_t i;

	if (daemon_early_setup() == -1)
		return 10;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (raise(sigs[i]) != 0)
			return 11;
	if (raise(SIGPIPE) != 0)
		return 12;
	if (sigpending(&pending) == -1)
		return 13;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!sigismember(&pending, sigs[i]))
			return 20 + (int)i;
	if (sigaction(SIGPIPE, NULL, &sa) == -1 || sa.sa_handler != SIG_IGN)
		return 14;
	return 0;
}

START_TEST(early_setup_fills_closed_fds)
{
	ck_assert_int_eq(in_child(early_fills_closed_fds), 0);
	ck_assert_int_eq(in_child(early_all_closed), 0);
	ck_assert_int_eq(in_child(early_keeps_open_fds), 0);
}
END_TEST

START_TEST(early_setup_blocks_signals)
{
	ck_assert_int_eq(in_child(early_blocks_signals), 0);
}
END_TEST

/* ---- the pidfile ---- */

static char pid_dir[64], pid_path[128];

static void
pid_setup(void)
{
	snprintf(pid_dir, sizeof(pid_dir), "/tmp/echod-daemon.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pid_dir));
	snprintf(pid_path, sizeof(pid_path), "%s/echod.pid", pid_dir);
}

static void
pid_teardown(void)
{
	unlink(pid_path);
	rmdir(pid_dir);
}

static long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static char second_err[512];

/* A second echod: must be refused, naming the holder. */
static int
second_open(void)
{
	int fd = daemon_pidfile_open(pid_path, second_err, sizeof(second_err));

	fprintf(stderr, "second open: %s\n", second_err);
	if (fd != -1)
		return 10;
	if (strstr(second_err, "already running") == NULL)
		return 11;
	/* The parent passed its pid in the environment. */
	return strstr(second_err, getenv("EXPECT_HOLDER")) != NULL ? 0 : 12;
}

/*
 * Opened (before the detaching fork), the file is locked and empty: the
 * pid that is about to exit is never in it.  Only daemon_pidfile_write,
 * once detached, puts the daemon's pid there.
 */
START_TEST(pidfile_names_only_the_writer)
{
	char err[256], want[32], buf[48];
	int fd, n;

	/* A stale pid from an earlier run goes at once. */
	fd = open(pid_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, "99999\n", 6), 6);
	close(fd);
	fd = daemon_pidfile_open(pid_path, err, sizeof(err));
	ck_assert_msg(fd != -1, "%s", err);
	ck_assert_int_eq(file_size(pid_path), 0);
	/* Locked but not written yet: "still starting", not a stale pid. */
	setenv("EXPECT_HOLDER", "it is still starting", 1);
	ck_assert_int_eq(in_child(second_open), 0);
	ck_assert_int_eq(daemon_pidfile_write(fd), 0);
	snprintf(want, sizeof(want), "%d\n", (int)getpid());
	n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
	want[strcspn(want, "\n")] = '\0';
	snprintf(buf, sizeof(buf), "(pid %s)", want);
	setenv("EXPECT_HOLDER", buf, 1);
	ck_assert_int_eq(in_child(second_open), 0);
	daemon_pidfile_remove(pid_path, fd);
	ck_assert_int_eq(file_size(pid_path), -1);
}
END_TEST

/* ---- the privilege drop ---- */

static gid_t want_gid;

static int
drop_as_root_with_group(void)
{
	struct conf c;
	char what[256], err[256];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	conf_defaults(&c);
	snprintf(c.user, sizeof(c.user), "root");
	snprintf(c.group, sizeof(c.group), "nogroup");
	c.allow_root = true;
	if (daemon_drop_privileges(&c, what, sizeof(what), err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "drop: %s\n", err);
		return 10;
	}
	fprintf(stderr, "drop: %s\n", what);
	if (getresuid(&ru, &eu, &su) == -1 || ru != 0 || eu != 0 || su != 0)
		return 11;
	if (getresgid(&rg, &eg, &sg) == -1)
		return 12;
	if (rg != want_gid || eg != want_gid || sg != want_gid)
		return 13;
	if (getgroups(0, NULL) != 0)
		return 14;
	return strstr(what, "group") != NULL ? 0 : 15;
}

/* Issue 9, defect 5: group was looked up and never set for root. */
START_TEST(root_user_takes_the_group)
{
	struct group *gr;

	if (geteuid() != 0 || (gr = getgrnam("nogroup")) == NULL) {
		fprintf(stderr, "daemon: root_user_takes_the_group SKIPPED: "
		    "needs root and a group 'nogroup'\n");
		return;
	}
	want_gid = gr->gr_gid;
	ck_assert_int_eq(in_child(drop_as_root_with_group), 0);
}
END_TEST

Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc;

	tc = h_case(s, "paths", 0, H_TESTS(absolute_path_too_long));
	tcase_add_loop_test(tc, absolute_path_table, 0, H_NELEM(abs_cases));
	h_case(s, "early", 0, H_TESTS(early_setup_fills_closed_fds,
	    early_setup_blocks_signals));
	h_case_fixed(s, "pidfile", 10, pid_setup, pid_teardown,
	    H_TESTS(pidfile_names_only_the_writer));
	h_case(s, "privileges", 0, H_TESTS(root_user_takes_the_group));
	return s;
}
