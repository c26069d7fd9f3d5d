/*
 * clients: what the integration suites share beyond harness.h:
 * failures recorded so that cleanup always runs (REQUIRE, cl_conclude,
 * REQUIRE_STOPPED), ports and clients on loopback (cl_listen_lo,
 * cl_free_port, cl_connect from a chosen source address, cl_echo,
 * cl_echo_new, cl_closed, cl_eof_or_reset), which worker holds a
 * connection (cl_server_inode, cl_owner, cl_owner_child), the daemon's
 * CPU time and memory, resource limits of a running daemon process, its
 * log (counting, waiting, the tail for a message), and helper processes
 * beside a test, among them the prober (cl_prober_*).  Reading /proc is
 * procfs.h's; starting the daemon is harness.h's.  One helper for each
 * thing: add to these rather than copying one into a suite.
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

/*
 * The end of an integration test, after its "out:" label: on failure
 * show it and the end of p's log, clean p up (h_cleanup), then assert
 * (a macro, so that Check names the test's own file and line).
 */
#define cl_conclude(t, p)                                                  \
	do {                                                               \
		cl_log_dump_if_failed((t), (p));                           \
		h_cleanup(p);                                              \
		ck_assert_msg(!(t)->failed, "%s", (t)->msg);               \
	} while (0)

/* Close those of fds[0..n-1] that are open (not -1) and set them to -1. */
void cl_close_fds(int *fds, int n);

/* Stop the daemon (cl_stop, timeout_ms); REQUIRE that it exits 0. */
#define REQUIRE_STOPPED(t, p, timeout_ms)                                  \
	do {                                                               \
		int st_ = cl_stop((p), (timeout_ms));                      \
		REQUIRE((t), cl_exited_with(st_, 0),                       \
		    "stop: wait status %#x", st_);                         \
	} while (0)

/* An echod_proc that h_cleanup may be called on before any start. */
void cl_proc_init(struct echod_proc *p);

/* Microseconds on the monotonic clock. */
long long cl_now_us(void);

/* The reference transform, independent of src/echo.c. */
void cl_upper(unsigned char *buf, size_t len);

/* Can this host bind ::1? */
int cl_have_ipv6(void);

/* Did the process exit with code?  st: a wait status, or -1 (timeout). */
int cl_exited_with(int st, int code);

/* A socket listening on 127.0.0.1, its port (the kernel's pick) into
 * *port; -1 on failure. */
int cl_listen_lo(int *port);
/* A port on 127.0.0.1 nothing listened on a moment ago; -1 on failure. */
int cl_free_port(void);
/* Is a connection to 127.0.0.1:port refused (nothing listens)?  errno
 * is connect's, or 0 when it was accepted. */
int cl_port_refused(int port);

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
 * Connect to 127.0.0.1:port, expect msg back uppercased within
 * timeout_ms, close: 1, or 0 with the reason in err.
 */
int cl_echo_new(int port, const char *msg, int timeout_ms, char *err,
    size_t errlen);

/*
 * Does the peer end the connection (EOF or reset) within timeout_ms?
 * Unlike cl_closed, bytes before the end are read and ignored.
 */
int cl_eof_or_reset(int fd, int timeout_ms);

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

/* The inode of the daemon's end of client_fd, connected to port
 * (sock_diag; /proc/net/tcp or tcp6 where that fails); 0 if none. */
unsigned long cl_server_inode(int port, int client_fd);
/* Does pid hold socket inode? */
int cl_pid_has_socket(pid_t pid, unsigned long inode);
/* The worker (pid, and slot if wanted) holding client_fd, itself or
 * through a per-connection child of its own; -1 if none. */
pid_t cl_owner(pid_t master, unsigned nslots, int port, int client_fd,
    int *slot);

/* The child of master (any worker, any generation) holding client_fd,
 * itself or through a per-connection child of its own. */
pid_t cl_owner_child(pid_t master, int port, int client_fd);
/* Wait until none of pids is alive (a zombie counts as gone), reading
 * p's notify datagrams meanwhile (p may be NULL); how many still are. */
int cl_wait_gone(struct echod_proc *p, const pid_t *pids, int n,
    int timeout_ms);
/* Is pid one of set[0..n-1]? */
int cl_pid_in(const pid_t *set, int n, pid_t pid);

/* utime + stime of master and its live descendants, in ms. */
long long cl_cpu_ms(pid_t master);
/* VmRSS of master and its live descendants, in kB. */
long cl_rss_kb(pid_t master);

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
/* "PATH ends:" and the last 1500 bytes of the log, for a message; a
 * static buffer, overwritten by the next call. */
const char *cl_log_tail(struct echod_proc *p);
/* For tests that assert directly (no REQUIRE): h_start, or abort the
 * test with the end of the log. */
void cl_must_start(struct echod_proc *p, const char *conf_text,
    int timeout_ms);
/* h_stop: the daemon must exit 0 within timeout_ms, or the test aborts. */
void cl_must_stop(struct echod_proc *p, int timeout_ms);

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

/*
 * A prober: a helper process (cl_child) that connects, echoes
 * "probe N: text\r\n" and closes, in a loop, until cl_prober_finish
 * tells it to stop; then it makes 20 more probes and reports.  Bounded
 * by max_iters (at most CL_PROBE_MAX) and run_ms; with max_bad > 0 it
 * also stops once that many probes failed or came back wrong.  With
 * say_going, cl_prober_start returns after the first probe.  With old,
 * it notes when a child of master not in old first served a probe.
 */
#define CL_PROBE_MAX 6000

struct cl_probe {
	int port;
	const char *text;
	int echo_ms, run_ms, max_iters, max_bad, say_going;
	pid_t master;
	const pid_t *old;
	int nold;
};

struct cl_probe_res {
	int iters, ok, refused, failed, wrong;
	int first_errno;
	int in_window;          /* probes overlapping the window's [from, to] */
	long long first_new_ms; /* first echo by a child not in old */
};

/* What the test asks about when it stops the prober (ms, h_now_ms). */
struct cl_probe_window {
	long long from, to;
};

/* Was every probe served (none refused, failed or wrong), and at least
 * min_ok of them?  1, or 0 with what was not in err. */
int cl_probe_clean(const struct cl_probe_res *r, int min_ok, char *err,
    size_t errlen);
/* a must stay valid until cl_prober_finish.  0, or -1. */
int cl_prober_start(struct cl_child *c, const struct cl_probe *a);
/* Stop it (w may be NULL) and read its result; 0, or -1. */
int cl_prober_finish(struct cl_child *c, const struct cl_probe_window *w,
    struct cl_probe_res *r);
/* utime + stime of pid alone (not its children), in ms. */
long long cl_pid_cpu_ms(pid_t pid);
/* Replace the daemon's configuration file with text (before a SIGHUP);
 * 0, or -1 with errno. */
int cl_write_conf(struct echod_proc *p, const char *text);
/* Write a file from a format (a configuration to reload); 0 or -1. */
int cl_write_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cl_conclude after closing those of fds[0..n-1] that are open. */
#define cl_conclude_fds(t, p, fds, n)                                      \
	do {                                                               \
		cl_close_fds((fds), (n));                                  \
		cl_conclude((t), (p));                                     \
	} while (0)

/* The pid in the pidfile at path, waiting up to timeout_ms (0: one look)
 * for it to be there; -1 if none. */
pid_t cl_pidfile_pid(const char *path, int timeout_ms);

/*
 * The process that serves client_fd, connected to port: the worker, or
 * under process-per-connection the worker's child for it (a descendant
 * of master holding the daemon's end); -1 if none.
 */
pid_t cl_conn_holder(pid_t master, int port, int client_fd);

/*
 * The inode of the IPv4 socket listening on port (any local address), 0
 * if none: whether a reload kept a listener's very socket.
 */
unsigned long cl_listener_inode(int port);

/* ---- the PROXY protocol, as a balancer speaks it (issue 12) ---- */

/*
 * A PROXY v1 line into buf (len bytes): "PROXY TCP4 SRC DST SPORT
 * DPORT\r\n" for proto "TCP4" or "TCP6" (the addresses written as
 * given, so a test may pass a malformed one), "PROXY UNKNOWN\r\n" for
 * "UNKNOWN" (src and dst ignored, may be NULL).  Its length (no NUL
 * counted, one written), or 0 if it does not fit.
 */
size_t cl_proxy_v1(char *buf, size_t len, const char *proto,
    const char *src, int sport, const char *dst, int dport);

/*
 * A PROXY v2 header into buf (len bytes): the 12-byte signature, version
 * 2 and the command PROXY with src and dst (numeric, both IPv4: AF_INET,
 * or both IPv6: AF_INET6, over STREAM), or, with src NULL, the command
 * LOCAL with no addresses (AF_UNSPEC); then tlvlen bytes of tlvs (TLV
 * records, cl_proxy_tlv; may be NULL), counted in the header's length.
 * Its length, or 0 if it does not fit or an address does not parse.
 * A test makes a malformed one by changing bytes of a valid one:
 * buf[12] is version and command, buf[13] family and protocol,
 * buf[14..15] the length that follows (big-endian).
 */
#define CL_PROXY_V2_SIG "\r\n\r\n\0\r\nQUIT\n"
size_t cl_proxy_v2(unsigned char *buf, size_t len, const char *src,
    int sport, const char *dst, int dport, const void *tlvs,
    size_t tlvlen);

/* One v2 TLV record (type, 16-bit length, value) into buf; its length,
 * or 0 if it does not fit. */
size_t cl_proxy_tlv(unsigned char *buf, size_t len, unsigned type,
    const void *val, size_t vlen);

/*
 * Send len bytes of buf in pieces of chunk bytes (with TCP_NODELAY, so
 * that each leaves as its own segment), waiting pause_ms between them in
 * a poll() on nothing: pacing, so that the daemon reads them apart, not
 * synchronisation.  0, or -1 with errno (EPIPE, ECONNRESET: the daemon
 * closed meanwhile).
 */
int cl_send_chunks(int fd, const void *buf, size_t len, size_t chunk,
    int pause_ms);

/*
 * The port of the idx-th (0, 1, ...) address of the "listening on" list
 * in p's READY=1 status that is proxied (marked " (PROXY)") when proxied
 * is 1, or plain when it is 0; -1 if there is none.
 */
int cl_ready_port(const struct echod_proc *p, int proxied, int idx);

/* "127.0.0.1:PORT" or "[::1]:PORT" of our end of fd, as the daemon names
 * its peer, into buf; buf, or "?" if it has none. */
const char *cl_local_name(int fd, char *buf, size_t len);

/* ---- appended by the haproxy helper: a byte-exact stream ---- */

/*
 * Send total pseudo-random bytes (from seed) on the connected fd,
 * half-close, and check that exactly their uppercase comes back, then
 * EOF: byte-exact, checked as it arrives (nothing held twice), writing
 * and reading in one poll loop (a daemon stops reading while its reply
 * waits: a client that only wrote would deadlock), within timeout_ms.
 * The bytes cover every value.  fd is made non-blocking.  1, or 0 with
 * what went wrong (and after how many bytes) in err.
 */
int cl_stream_echo(int fd, unsigned long long total, unsigned long long seed,
    int timeout_ms, char *err, size_t errlen);

/*
 * The port of the metrics_listen the master opened last (its nth "metrics:
 * /metrics on 127.0.0.1:PORT" line), once nserving metrics processes have
 * said they serve; -1 if not within 5 s.
 */
int cl_metrics_port(struct echod_proc *p, int nth, int nserving);

/* Is a connection to 127.0.0.1:port refused within timeout_ms (1)? */
int cl_port_refused_within(int port, int timeout_ms);

#endif

/*
 * HTTP for the metrics endpoint: read what fd sends until it closes,
 * into buf (NUL-terminated): bytes, or -1 if it did not close within
 * timeout_ms.  cl_http connects to 127.0.0.1:port, sends request (raw
 * bytes, reqlen of them) and reads the whole response the same way.
 * cl_metric finds a sample ("name" or "name{label=\"v\"}" exactly as
 * written) in an exposition text: 0 with its value, or -1.
 */
int cl_read_all(int fd, char *buf, size_t len, int timeout_ms);
int cl_http(int port, const char *request, size_t reqlen, char *resp,
    size_t len, int timeout_ms);
int cl_metric(const char *text, const char *sample, unsigned long long *v);
