/*
 * check_helpers: the test helpers every integration suite leans on
 * (procfs.h, clients.h, harness.h), checked on this process and on
 * socketpairs, so that a wrong helper fails here, by name, rather than
 * as a puzzling failure of some daemon test.  Nothing here starts echod.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "suites.h"

/* ---- procfs ---- */

START_TEST(pf_reads_this_process)
{
	struct pf_stat st;
	char buf[64];

	ck_assert_int_gt(pf_read_pid(getpid(), "stat", buf, sizeof(buf)), 0);
	ck_assert_int_eq((int)strlen(buf), (int)sizeof(buf) - 1); /* cut */
	ck_assert_int_eq(pf_read("/nonexistent/file", buf, sizeof(buf)), -1);
	ck_assert_int_eq(pf_stat(getpid(), &st), 0);
	ck_assert_int_eq(st.ppid, getppid());
	ck_assert_int_eq(st.pgrp, getpgrp());
	ck_assert_int_eq(st.sid, getsid(0));
	ck_assert_int_eq(st.state, 'R');
	ck_assert_int_eq(pf_state(getpid()), 'R');
	ck_assert_int_gt(pf_status_num(getpid(), "VmRSS"), 0);
	ck_assert_int_eq(pf_status_num(getpid(), "Pid"), getpid());
	/* A key inside another one's name is not that key. */
	ck_assert_int_eq(pf_status_num(getpid(), "ctxt_switches"), -1);
	ck_assert_int_eq(pf_status_num(getpid(), "NoSuchField"), -1);
}
END_TEST

START_TEST(pf_sees_descriptors)
{
	char want[64], got[64];
	struct stat sb;
	int sv[2], n0;

	n0 = pf_count_fds(getpid());
	ck_assert_int_gt(n0, 2);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	ck_assert_int_eq(pf_count_fds(getpid()), n0 + 2);
	ck_assert_int_eq(fstat(sv[0], &sb), 0);
	snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)sb.st_ino);
	ck_assert(pf_has_fd(getpid(), want));
	ck_assert_int_eq(pf_fd_target(getpid(), sv[0], got, sizeof(got)), 0);
	ck_assert_str_eq(got, want);
	ck_assert(cl_pid_has_socket(getpid(), (unsigned long)sb.st_ino));
	close(sv[0]);
	close(sv[1]);
	ck_assert(!pf_has_fd(getpid(), want));
	ck_assert_int_eq(pf_count_fds(getpid()), n0);
}
END_TEST

/* A child that stops itself, then is continued and exits 3. */
START_TEST(pf_waits_for_stop_and_gone)
{
	pid_t kid;
	int st;

	ck_assert_int_ne(kid = fork(), -1);
	if (kid == 0) {
		raise(SIGSTOP);
		_exit(3);
	}
	ck_assert_msg(pf_wait_stopped(kid, 1, 5000), "child not stopped");
	ck_assert_int_eq(pf_state(kid), 'T');
	ck_assert_int_eq(kill(kid, SIGCONT), 0);
	ck_assert_msg(pf_wait_stopped(kid, 0, 5000), "child still stopped");
	/* A zombie is gone for cl_wait_gone (and h_alive). */
	ck_assert_int_eq(cl_wait_gone(NULL, &kid, 1, 5000), 0);
	ck_assert_int_eq(waitpid(kid, &st, 0), kid);
	ck_assert(cl_exited_with(st, 3));
	ck_assert(!cl_exited_with(st, 0));
	ck_assert_int_eq(pf_state(kid), 0);
	ck_assert(!pf_wait_stopped(kid, 1, 10));
}
END_TEST

/* ---- clients: pure decisions ---- */

static const struct exit_case {
	int st, code, want;
} exit_cases[] = {
	{ 0, 0, 1 },
	{ 3 << 8, 3, 1 },
	{ 3 << 8, 0, 0 },
	{ -1, 0, 0 },     /* a timeout is no exit */
	{ SIGKILL, 0, 0 }, /* killed, not exited */
	{ 0x7f, 0, 0 },   /* stopped */
};

/* A blocked signal sent to this process is pending for it as a whole. */
START_TEST(pf_sees_pending_signal)
{
	sigset_t set, old;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	ck_assert_int_eq(sigprocmask(SIG_BLOCK, &set, &old), 0);
	ck_assert(!pf_sig_pending(getpid(), SIGUSR2, 1));
	ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
	ck_assert(pf_sig_pending(getpid(), SIGUSR2, 0));
	ck_assert(pf_sig_pending(getpid(), SIGUSR2, 1));
	ck_assert(!pf_sig_pending(getpid(), SIGUSR1, 1));
	ck_assert(!pf_sig_pending(getpid(), 0, 1));
	signal(SIGUSR2, SIG_IGN); /* drops it */
	ck_assert(!pf_sig_pending(getpid(), SIGUSR2, 1));
	ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}
END_TEST

START_TEST(exited_with_table)
{
	const struct exit_case *c = &exit_cases[_i];

	ck_assert_msg(cl_exited_with(c->st, c->code) == c->want,
	    "cl_exited_with(%#x, %d) != %d", c->st, c->code, c->want);
}
END_TEST

static const struct probe_case {
	struct cl_probe_res r;
	int min_ok, want;
	const char *says;
} probe_cases[] = {
	{ { 20, 20, 0, 0, 0, 0, 0, 0 }, 20, 1, "" },
	{ { 30, 29, 1, 0, 0, ECONNREFUSED, 0, 0 }, 20, 0, "1 refused" },
	{ { 30, 29, 0, 1, 0, ETIMEDOUT, 0, 0 }, 20, 0, "1 failed" },
	{ { 30, 29, 0, 0, 1, 0, 0, 0 }, 20, 0, "1 wrong" },
	{ { 19, 19, 0, 0, 0, 0, 0, 0 }, 20, 0, "only 19 connections" },
	{ { 0, 0, 0, 0, 0, 0, 0, 0 }, 0, 1, "" },
};

START_TEST(probe_clean_table)
{
	const struct probe_case *c = &probe_cases[_i];
	char err[256] = "";

	ck_assert_int_eq(cl_probe_clean(&c->r, c->min_ok, err, sizeof(err)),
	    c->want);
	ck_assert_msg(strstr(err, c->says) != NULL, "'%s' does not say '%s'",
	    err, c->says);
}
END_TEST

START_TEST(upper_reference)
{
	unsigned char b[] = "az AZ `{@[ 09 \xe1\xfa";

	cl_upper(b, sizeof(b) - 1);
	ck_assert_str_eq((char *)b, "AZ AZ `{@[ 09 \xe1\xfa");
}
END_TEST

/* ---- clients: sockets ---- */

START_TEST(peer_end_seen)
{
	int sv[2];

	/* Bytes, then EOF: cl_closed says no, cl_eof_or_reset drains. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], "xy", 2), 2);
	ck_assert(!cl_closed(sv[0], 200));
	ck_assert_int_eq(write(sv[1], "z", 1), 1);
	close(sv[1]);
	ck_assert(cl_eof_or_reset(sv[0], 1000));
	close(sv[0]);
	/* Nothing at all: neither sees an end within the time. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert(!cl_closed(sv[0], 50));
	ck_assert(!cl_eof_or_reset(sv[0], 50));
	close(sv[1]);
	ck_assert(cl_closed(sv[0], 1000));
	close(sv[0]);
}
END_TEST

START_TEST(ports_on_loopback)
{
	int port, fd, free_port;

	ck_assert_int_ne(fd = cl_listen_lo(&port), -1);
	ck_assert_int_gt(port, 0);
	ck_assert(!cl_port_refused(port));
	close(fd);
	ck_assert(cl_port_refused(port));
	ck_assert_int_gt(free_port = cl_free_port(), 0);
	ck_assert(cl_port_refused(free_port));
}
END_TEST

/* The daemon's end of a connection is found by its inode: here the
 * "daemon" is this process, holding the accepted socket. */
START_TEST(server_inode_found)
{
	struct stat sb;
	int port, lfd, cfd, afd = -1;

	ck_assert_int_ne(lfd = cl_listen_lo(&port), -1);
	ck_assert_int_ne(cfd = h_connect(port, 0), -1);
	ck_assert_int_ne(afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	ck_assert_int_eq(fstat(afd, &sb), 0);
	ck_assert_uint_eq(cl_server_inode(port, cfd), sb.st_ino);
	ck_assert_uint_eq(cl_server_inode(port + 1 == 65536 ? 1 : port + 1,
	    cfd), 0);
	ck_assert(cl_pid_has_socket(getpid(), cl_server_inode(port, cfd)));
	close(afd);
	close(cfd);
	close(lfd);
}
END_TEST

Suite *
helpers_suite(void)
{
	Suite *s = suite_create("helpers");
	TCase *tc;

	h_case(s, "procfs", 10, H_TESTS(pf_reads_this_process,
	    pf_sees_descriptors, pf_waits_for_stop_and_gone,
	    pf_sees_pending_signal));
	tc = h_case(s, "clients", 10, H_TESTS(upper_reference, peer_end_seen,
	    ports_on_loopback, server_inode_found));
	tcase_add_loop_test(tc, exited_with_table, 0, H_NELEM(exit_cases));
	tcase_add_loop_test(tc, probe_clean_table, 0, H_NELEM(probe_cases));
	return s;
}
