/*
 * clients: what the integration suites share beyond harness.h:
 * failures recorded so that cleanup always runs, clients bound to a
 * chosen loopback source address, which worker holds a connection, the
 * daemon's CPU time and memory from /proc, resource limits of a running
 * daemon process, counting lines in its log, and helper processes (the
 * probers) that run beside a test.
 *
 * Check's fork mode _exit()s a test on its first failed ck_assert and
 * skips its teardown, so the integration tests record the first failure
 * (REQUIRE jumps to the test's "out:" label), clean up every daemon and
 * socket by pid and descriptor, and only then assert.
 */
#ifndef ECHOD_TEST_CLIENTS_H
#define ECHOD_TEST_CLIENTS_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "harness.h"

struct tres {
	int failed;
	char msg[2048];
};

void cl_fail(struct tres *t, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define REQUIRE(t, cond, ...)                                              \
	do {                                                               \
		if (!(cond)) {                                             \
			cl_fail((t), __LINE__, __VA_ARGS__);               \
			goto out;                                          \
		}                                                          \
	} while (0)

/* An echod_proc that h_cleanup may be called on before any start. */
void cl_proc_init(struct echod_proc *p);

/* Microseconds on the monotonic clock. */
long long cl_now_us(void);

/* The reference transform, independent of src/echo.c. */
void cl_upper(unsigned char *buf, size_t len);

/* Can this host bind ::1? */
int cl_have_ipv6(void);

/*
 * Blocking TCP connection from source address src (numeric, port chosen
 * by the kernel at connect time; NULL: any) to dst:port, with 10 s I/O
 * timeouts.  -1 with errno on failure.
 */
int cl_connect(const char *src, const char *dst, int port);

/* Send msg; expect it back uppercased within timeout_ms. */
int cl_echo(int fd, const char *msg, int timeout_ms);

/*
 * Does the peer end the connection (EOF or reset) within timeout_ms
 * without sending a byte?  Bytes before the end count as "no".
 */
int cl_closed(int fd, int timeout_ms);

/*
 * Send msg and see what comes of it: 1 if it comes back uppercased, 0 if
 * the daemon ends the connection (EOF or reset) before sending a byte,
 * -1 otherwise (a timeout, wrong bytes).
 */
int cl_reply(int fd, const char *msg, int timeout_ms);

/* Send a byte, then cl_closed: a refused connection, never echoed. */
int cl_refused(int fd, int timeout_ms);

/* Half-close and wait for the daemon's EOF: it has closed its end. */
int cl_finish(int fd, int timeout_ms);

/* close() with SO_LINGER 0: the peer gets a reset. */
void cl_reset(int fd);

/* The inode of the daemon's end of client_fd (/proc/net/tcp, tcp6). */
unsigned long cl_server_inode(int port, int client_fd);
/* Does pid hold socket inode? */
int cl_pid_has_socket(pid_t pid, unsigned long inode);
/* The worker (pid, and slot if wanted) holding client_fd; -1 if none. */
pid_t cl_owner(pid_t master, unsigned nslots, int port, int client_fd,
    int *slot);

/* utime + stime of master and its live children, in ms. */
long long cl_cpu_ms(pid_t master);
/* VmRSS of master and its live children, in kB. */
long cl_rss_kb(pid_t master);
/* Open descriptors of pid; -1 if it is gone. */
int cl_count_fds(pid_t pid);

/*
 * prlimit() on a process of the daemon.  As root without
 * CAP_SYS_RESOURCE (a container) the kernel allows it only to a process
 * with the target's own uids and gids, so a helper child takes them on.
 * nl may be NULL (read only); old may be NULL.  0, or -1 with errno.
 */
int cl_prlimit(pid_t pid, int resource, const struct rlimit *nl,
    struct rlimit *old);

/* Read what the daemon sent to NOTIFY_SOCKET and drop it: a full queue
 * would block the master in sd_notify(). */
void cl_notify_drain(struct echod_proc *p);
/* SIGTERM, wait (draining notify), SIGKILL after timeout_ms; status. */
int cl_stop(struct echod_proc *p, int timeout_ms);

/* Lines of the log containing needle. */
int cl_log_count(struct echod_proc *p, const char *needle);
/* Wait until at least n lines contain needle; 1 if they do. */
int cl_log_wait(struct echod_proc *p, const char *needle, int n,
    int timeout_ms);
/* The first log line containing needle, into line; 0 if none. */
int cl_log_line(struct echod_proc *p, const char *needle, char *line,
    size_t len);
/* On failure, show the failure and the end of the daemon's log. */
void cl_log_dump_if_failed(const struct tres *t, struct echod_proc *p);

/*
 * A helper process (a prober, say) that runs beside a test: the test
 * writes on stop_wr when it should wind down, and reads its result from
 * res_rd.  cl_child_start forks; the child closes every other descriptor
 * (the test's connections must not stay open in its copy) and runs
 * fn(arg, stop_rd, res_wr), which must not return.
 */
struct cl_child {
	pid_t pid;
	int stop_wr, res_rd;
};
#define CL_CHILD_INIT { -1, -1, -1 }

int cl_child_start(struct cl_child *c,
    void (*fn)(const void *arg, int stop_rd, int res_wr), const void *arg);
/* Send msg, read exactly reslen bytes of result (8 s at most), reap the
 * child (8 s at most); 0, or -1 when no result came. */
int cl_child_finish(struct cl_child *c, const void *msg, size_t msglen,
    void *res, size_t reslen);
/* SIGKILL and reap it if still there, close the pipes; idempotent. */
void cl_child_cleanup(struct cl_child *c);

/* Write a file from a format (a configuration to reload); 0 or -1. */
int cl_write_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A loopback TCP port free a moment ago (closed again), or -1. */
int cl_free_port(void);
/* VmSize of pid (its address space, as RLIMIT_AS counts it), in kB; -1. */
long cl_vm_kb(pid_t pid);

#endif
