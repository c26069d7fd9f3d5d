/*
 * haproxy: a real HAProxy (Debian's haproxy package) in front of echod
 * instances, for the integration tests of issue 12 (PROXY protocol).
 *
 * Each HAProxy gets its own temporary directory holding its haproxy.cfg,
 * its log (stderr: its warnings and one line per connection) and its
 * stats socket, through which the tests ask for each server's state
 * ("show stat").  It runs in the foreground (-db, no master-worker, no
 * chroot, no user switch: the tests run as whoever runs them), dies with
 * the test process (PR_SET_PDEATHSIG), and is stopped by its pid.  Its
 * frontend listens on 127.0.0.1 on a port that was free a moment ago
 * (haproxy.cfg cannot say "port 0"): a start that loses that race is
 * retried on another port, a bounded number of times.  Every wait has a
 * deadline.  Never more than loopback.
 */
#ifndef ECHOD_TEST_HAPROXY_H
#define ECHOD_TEST_HAPROXY_H

#include <stddef.h>
#include <sys/types.h>

#define HAP_MAX_SERVERS 4

/* What haproxy.cfg says; hap_conf_init gives the tests' defaults. */
struct hap_conf {
	int port;                     /* the frontend's, on 127.0.0.1 */
	int nservers;                 /* backend servers e1, e2, ... */
	int server_port[HAP_MAX_SERVERS]; /* on 127.0.0.1 */
	int send_proxy;               /* send-proxy-v2 + check-send-proxy */
	int inter_ms, fall, rise;     /* health checks */
	int retries, redispatch;      /* redispatch: on every retry */
	int nbthread;
	const char *sock_path;        /* the stats socket */
};

/* The tests' defaults: PROXY v2, checks every 500 ms, fall 2, rise 2,
 * retries 3 with redispatch, one thread. */
void hap_conf_init(struct hap_conf *c);

/*
 * haproxy.cfg for c into buf (len bytes): a pure function.  Returns the
 * length, or -1 if it does not fit or c is out of range.
 */
int hap_config(const struct hap_conf *c, char *buf, size_t len);

/*
 * From the CSV of "show stat": the field named field (a name of its
 * header line, "status", "stot", "check_status", ...) of the row of
 * proxy px and server sv, into out.  A pure function.  0, or -1 if the
 * header, the row or the field is not there.
 */
int hap_stat_field(const char *csv, const char *px, const char *sv,
    const char *field, char *out, size_t outlen);

/* A server's state as a health check sees it, from its "status". */
enum hap_state { HAP_UNKNOWN, HAP_UP, HAP_DOWN, HAP_MAINT };

/* "UP", "UP 1/2" (still up, failing): HAP_UP; "DOWN", "DOWN 1/2" (still
 * down, passing): HAP_DOWN; "MAINT..." HAP_MAINT.  A pure function. */
enum hap_state hap_state_of(const char *status);

struct hap_proc {
	pid_t pid;
	int port; /* the frontend's */
	char dir[64];
	char cfg_path[128];
	char log_path[128];
	char sock_path[108]; /* fits sun_path */
};

/* The binary: $HAPROXY_BIN, or haproxy in PATH, or /usr/sbin/haproxy. */
const char *hap_bin(void);
/* Is it there and does it run ("haproxy -v")?  Its version line into
 * ver (may be NULL). */
int hap_have(char *ver, size_t verlen);

/* An hap_proc that hap_cleanup may be called on before any start. */
void hap_init(struct hap_proc *h);

/*
 * Write haproxy.cfg for c (its port and sock_path are filled in here)
 * into a new temp dir, start haproxy -f cfg -db and wait up to
 * timeout_ms until its stats socket answers and its frontend accepts.
 * A start that fails (a port taken meanwhile) is retried on another
 * free port, 5 times at most.  0, or -1 with the reason in err.
 */
int hap_start(struct hap_proc *h, struct hap_conf *c, int timeout_ms,
    char *err, size_t errlen);

/* Send cmd ("show stat") to the stats socket, read the whole answer
 * into out within timeout_ms.  Its length, or -1. */
int hap_cmd(const struct hap_proc *h, const char *cmd, char *out,
    size_t outlen, int timeout_ms);

/* The state of backend "be" server sv (e1, e2, ...) now. */
enum hap_state hap_server_state(const struct hap_proc *h, const char *sv);
/* A field of be/sv's row now, into out; 0 or -1. */
int hap_server_field(const struct hap_proc *h, const char *sv,
    const char *field, char *out, size_t outlen);

/*
 * Wait until be/sv is in state want, polling every few ms; with
 * want == HAP_UP also until its last check passed ("L7OK": the word
 * came back uppercased).  Milliseconds it took, or -1 on timeout.
 */
long long hap_wait_state(const struct hap_proc *h, const char *sv,
    enum hap_state want, int timeout_ms);

/* Soft stop (SIGUSR1: close the frontend, let the sessions end), then
 * SIGTERM, then SIGKILL, each with a bounded wait.  The wait status,
 * or -1. */
int hap_stop(struct hap_proc *h, int timeout_ms);
/* Kill (if running), reap, remove the temp dir.  Safe to call twice. */
void hap_cleanup(struct hap_proc *h);

#endif
