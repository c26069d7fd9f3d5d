/*
 * conf: the configuration file (libconfuse) and its validation.
 *
 * Turns a file into a plain struct conf.  cfg_t never leaves conf.c.  Every
 * error names the file, the line, the option and what is allowed; nothing
 * here exits or logs: errors go into the caller's buffer.
 */
#ifndef ECHOD_CONF_H
#define ECHOD_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "cidr.h"

#define CONF_DEFAULT_PATH "/etc/echod/echod.conf"
#define CONF_LISTEN_MAX 16

#define CONF_WORKERS_MAX 256
#define CONF_MAX_CONNECTIONS_MAX 1000000
#define CONF_BACKLOG_MAX 65535
#define CONF_TIMEOUT_MAX 86400
#define CONF_SHUTDOWN_TIMEOUT_MAX 3600
#define CONF_WORKER_TIMEOUT_MAX 3600

/* Built-in defaults, used where the file says nothing. */
#define CONF_DEFAULT_LISTEN "*:7007"
#define CONF_DEFAULT_WORKERS 0 /* 0 means "auto": one per online CPU */
#define CONF_DEFAULT_MAX_CONNECTIONS 8192
#define CONF_DEFAULT_BACKLOG 1024
#define CONF_DEFAULT_IDLE_TIMEOUT 300
#define CONF_DEFAULT_SHUTDOWN_TIMEOUT 10
#define CONF_DEFAULT_LOG_LEVEL "info"
#define CONF_DEFAULT_WORKER_TIMEOUT 30
#define CONF_DEFAULT_USER "nobody" /* only used when started as root */
#define CONF_DEFAULT_PIDFILE "/run/echod.pid"
#define CONF_NAME_MAX 64
#define CONF_DEFAULT_MAX_CONNECTION_TIME 0
#define CONF_PER_IP_MAX 1000000
#define CONF_CONNECTION_TIME_MAX 604800 /* a week */
#define CONF_DEFAULT_THREADS 16
#define CONF_THREADS_MAX 1024
#define CONF_TRUSTED_MAX 64         /* proxy_trusted blocks */
#define CONF_DEFAULT_PROXY_TIMEOUT 5 /* seconds for a PROXY header */
#define CONF_PROXY_TIMEOUT_MAX 300

/*
 * The worker sandbox (seccomp).  on: a worker that cannot load its filter
 * exits 71 (start-up fails, a reload fails); try: it logs the real reason
 * and runs without; off: none.  The file also takes libconfuse's booleans
 * (true, yes / false, no) as on / off.
 */
enum conf_sandbox {
	CONF_SANDBOX_OFF = 0,
	CONF_SANDBOX_ON = 1,
	CONF_SANDBOX_TRY = 2
};

/*
 * How a worker serves its connections (issue 11, the lecture's models):
 * events: one epoll loop over many; prefork: one at a time, blocking;
 * process: a child process each; thread: a thread each; thread-pool:
 * threads started at start-up, handed connections.
 */
enum conf_model {
	CONF_MODEL_EVENTS = 0,
	CONF_MODEL_PREFORK,
	CONF_MODEL_PROCESS,
	CONF_MODEL_THREAD,
	CONF_MODEL_THREAD_POOL
};

struct conf {
	char path[4096];     /* the file read, "" for built-in defaults */
	char *listen[CONF_LISTEN_MAX];
	size_t nlisten;
	int workers;         /* resolved: never 0 after conf_load */
	bool workers_auto;   /* the file said "auto" (or nothing) */
	int max_connections; /* per worker */
	int backlog;
	int idle_timeout;     /* seconds, 0 = never */
	int shutdown_timeout; /* seconds */
	int log_level;        /* LOG_LVL_* */
	int worker_timeout;   /* seconds without a heartbeat; 0 = never */
	char user[CONF_NAME_MAX];  /* started as root: run as this user */
	char group[CONF_NAME_MAX]; /* "" = the user's primary group */
	bool allow_root;           /* user may be root (uid 0) */
	char pidfile[4096];        /* written with -d */
	int max_connection_time;   /* seconds a connection may last; 0 = no limit */
	int max_connections_per_ip;     /* across the pool; 0 = no limit */
	int max_connection_rate_per_ip; /* new connections a second; 0 = none */
	bool limits_exempt_loopback;    /* per-IP limits spare 127/8 and ::1 */
	int sandbox;                    /* enum conf_sandbox */
	int model;                      /* enum conf_model */
	int threads;                    /* thread-pool: threads per worker */
	/*
	 * PROXY protocol (issue 12): listeners whose clients must start
	 * with a PROXY header, in listen's syntax (listen and proxy_listen
	 * together hold at most CONF_LISTEN_MAX addresses, each once); the
	 * balancers allowed to send one; the seconds allowed for it.
	 */
	char *proxy_listen[CONF_LISTEN_MAX];
	size_t nproxy_listen;
	struct cidr proxy_trusted[CONF_TRUSTED_MAX];
	size_t nproxy_trusted;
	int proxy_timeout;
	/* Prometheus /metrics (issue 13): "" (off) or one address. */
	char metrics_listen[64];
};

/* Fill c with the built-in defaults (workers resolved to online CPUs). */
void conf_defaults(struct conf *c);

/*
 * Read and validate path into c.  Returns 0, or -1 with a one-line message
 * in err ("FILE:LINE: option: what is wrong; allowed: ...").  c must hold a
 * valid conf already (conf_defaults, an earlier conf_load, or all zeros):
 * it is freed and replaced only on success, so a failed reload keeps it.
 * Not reentrant (neither is libconfuse).
 */
int conf_load(struct conf *c, const char *path, char *err, size_t errlen);

/*
 * Command-line overrides, validated as in the file: -1 with a message in
 * err ("workers: 'x' is not a number; allowed: 1..256 or auto") and c
 * unchanged on a bad value.  conf_set_listen replaces the whole list.
 */
int conf_set_workers(struct conf *c, const char *value, char *err,
    size_t errlen);
int conf_set_listen(struct conf *c, char *const *addrs, size_t n, char *err,
    size_t errlen);

/* What workers = 0 ("auto") means: one per online CPU, 1 to
 * CONF_WORKERS_MAX. */
int conf_auto_workers(void);

/* The name of the i-th option of the file, or NULL past the last. */
const char *conf_option_name(size_t i);

/* "on", "off", "try" for a CONF_SANDBOX_* ("?" for anything else). */
const char *conf_sandbox_name(int mode);

/* "events", "prefork", "process-per-connection", "thread-per-connection",
 * "thread-pool" for a CONF_MODEL_* ("?" for anything else). */
const char *conf_model_name(int model);

/* A one-line summary for -t and the start-up log. */
void conf_summary(const struct conf *c, char *buf, size_t len);

void conf_free(struct conf *c);

#endif
