/*
 * harness: start the real build/echod for integration tests and talk to it.
 *
 * Each daemon gets its own temporary directory holding its configuration,
 * its log (stderr) and a NOTIFY_SOCKET datagram socket owned by the test:
 * readiness is the daemon's own READY=1, never a sleep.  Daemons listen on
 * 127.0.0.1 port 0; the real port is read from the STATUS= line sent with
 * READY=1 ("... listening on 127.0.0.1:PORT").  Every wait has a deadline.
 * A started daemon dies with the test process (PR_SET_PDEATHSIG) even if
 * an assertion fails before its teardown.
 */
#ifndef ECHOD_TEST_HARNESS_H
#define ECHOD_TEST_HARNESS_H

#include <check.h>
#include <stddef.h>
#include <sys/types.h>

struct echod_proc {
	pid_t pid;
	int notify_fd;
	char dir[64];
	char conf_path[128];
	char log_path[128];
	char notify_path[100]; /* fits sun_path */
	int port;        /* first listener's port, from READY's STATUS */
	char ready[512]; /* the READY=1 datagram */
	/*
	 * Datagrams read while waiting for something else: a datagram
	 * socket queues only a few (net.unix.max_dgram_qlen, 10 here) and a
	 * full queue would block the daemon's sd_notify().  Oldest first.
	 */
	char queued[32][512];
	int nqueued;
};

/* Read every notify datagram waiting now into p->queued. */
void h_drain_notify(struct echod_proc *p);

/* The binary under test: $ECHOD_BIN or build/echod. */
const char *h_echod_bin(void);

/*
 * Write conf_text (may be NULL: no -c) into the temp dir, start echod with
 * "-c conf" plus args (NULL-terminated, may be NULL) and wait up to
 * timeout_ms for READY=1.  Returns 0, or -1 if it exited or timed out.
 */
int h_start(struct echod_proc *p, const char *conf_text,
    const char *const *args, int timeout_ms);
/* As h_start but does not wait for READY=1. */
int h_spawn(struct echod_proc *p, const char *conf_text,
    const char *const *args);

/*
 * As h_spawn, with extra environment entries ("NAME=value"; a value of
 * "self" is replaced by the child's own pid, for LISTEN_PID and
 * WATCHDOG_PID) and descriptors to hand over as fds 3, 4, ... (for
 * LISTEN_FDS).  envs and fds may be NULL / 0.
 */
int h_spawn_ex(struct echod_proc *p, const char *conf_text,
    const char *const *args, const char *const *envs, const int *fds,
    int nfds);

/* In a forked child about to exec: stdout and stderr appended to
 * log_path, stdin from /dev/null. */
void h_child_stdio(const char *log_path);

/*
 * Wait for the next notify datagram containing needle (NULL: any), looking
 * at the queued ones first (and dropping those before it); copy it to
 * out.  Returns 0, or -1 on timeout.
 */
int h_wait_notify(struct echod_proc *p, const char *needle, int timeout_ms,
    char *out, size_t outlen);

/* Wait for the daemon to exit; returns its wait status, or -1 on timeout. */
int h_wait_exit(struct echod_proc *p, int timeout_ms);
/* SIGTERM, wait; SIGKILL after timeout_ms.  Returns the wait status. */
int h_stop(struct echod_proc *p, int timeout_ms);
/* Kill (if running), reap, remove the temp dir.  Safe to call twice. */
void h_cleanup(struct echod_proc *p);

/* pid of the child of master whose title is "echod: worker SLOT", or -1. */
pid_t h_worker_pid(pid_t master, unsigned slot);
/* All children of master; returns how many (at most max). */
int h_children(pid_t master, pid_t *pids, int max);
/* Wait until slot has a live worker other than old (old may be -1). */
pid_t h_wait_worker(pid_t master, unsigned slot, pid_t old, int timeout_ms);
/* Is pid alive (and not a zombie)? */
int h_alive(pid_t pid);

/* Does the daemon's log contain needle?  Polls until timeout_ms. */
int h_log_wait(struct echod_proc *p, const char *needle, int timeout_ms);
/* Read the whole log into buf (NUL-terminated); returns its length. */
size_t h_log_read(struct echod_proc *p, char *buf, size_t len);

/* Blocking TCP connection to 127.0.0.1:port ([::1] if v6) with 10 s I/O
 * timeouts; -1 on failure (errno set). */
int h_connect(int port, int v6);
/* Write all of buf; 0 or -1. */
int h_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes within timeout_ms; returns bytes read. */
size_t h_read_exact(int fd, void *buf, size_t len, int timeout_ms);
/* Is the next read EOF within timeout_ms? */
int h_expect_eof(int fd, int timeout_ms);

/* Milliseconds, microseconds on the monotonic clock. */
long long h_now_ms(void);
long long h_now_us(void);
/* Sleep a few ms between polls of a condition with a deadline. */
void h_poll_pause(void);

/*
 * Run argv (argv[0] may be "echod": replaced by h_echod_bin()) with no
 * stdin, capture stdout+stderr into out; returns the wait status, or -1 on
 * timeout (the process is killed) or with more than 32 arguments.
 */
int h_run(const char *const *argv, char *out, size_t outlen, int timeout_ms);

/* After h_spawn: wait for READY=1 and read the port, as h_start does. */
int h_wait_ready(struct echod_proc *p, int timeout_ms);
/*
 * Add a test case to s: its name, a timeout in seconds (0: Check's
 * default) and its tests, a NULL-terminated list (H_TESTS(a, b, ...)).
 * Returns it, for fixtures and loop tests.
 */
TCase *h_case(Suite *s, const char *name, double timeout_s,
    const TTest *const *tests);
/* The same with a checked fixture: setup and teardown around each test. */
TCase *h_case_fixed(Suite *s, const char *name, double timeout_s,
    void (*setup)(void), void (*teardown)(void), const TTest *const *tests);
#define H_TESTS(...) ((const TTest *const[]){ __VA_ARGS__, NULL })
/* How many elements an array has, for tcase_add_loop_test. */
#define H_NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/*
 * Server models (issue 11): the values of the `model` option, in the
 * order the model-parametrised suites run them.
 */
#define H_NMODELS 5
extern const char *const h_models[H_NMODELS];

/*
 * conf_text with the model's lines appended, into buf (len bytes):
 * `model = X` unless model is NULL or "events" (so that events runs on
 * a build without the option), and for thread-pool `threads = N` when
 * threads > 0.  Returns buf, or NULL if it does not fit.
 */
const char *h_conf_model(char *buf, size_t len, const char *conf_text,
    const char *model, int threads);

/*
 * How many workers a scenario needs to hold `conns` connections at once
 * on each of `workers` workers: under prefork a worker holds one
 * connection, so workers * conns; every other model holds them in one
 * worker.  A pure decision, for a test's configuration.
 */
int h_model_workers(const char *model, int workers, int conns);

/*
 * Does one worker process hold the descriptors of many connections at
 * once (events, thread-per-connection, thread-pool: 1)?  Or one at most
 * (prefork: it serves one and does not accept meanwhile) or none
 * (process-per-connection: its child holds it): 0.  A pure decision: a
 * test that runs a worker out of descriptors needs to know.
 */
int h_model_multiplexes(const char *model);

/*
 * Every live descendant of root (children, their children, ...): under
 * process-per-connection a connection is served by a worker's child.
 * Returns how many (at most max), children before grandchildren.
 */
int h_descendants(pid_t root, pid_t *pids, int max);

#endif
