/*
 * probe: the master's health probe, for the systemd watchdog.
 *
 * Connects to one of our own listeners, sends a random lowercase token and
 * expects it back uppercased before a deadline: proof that the whole path,
 * accept queue, a worker's loop and the echo itself, works; not merely
 * that the master is alive.  Non-blocking: the master's loop drives it.
 */
#ifndef ECHOD_PROBE_H
#define ECHOD_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROBE_TOKEN_LEN 16
#define PROBE_WATCHDOG_MIN_MS 1000 /* a shorter WATCHDOG_USEC is clamped */
#define PROBE_DEADLINE_MIN_MS 200
#define PROBE_DEADLINE_MAX_MS 5000

enum probe_result {
	PROBE_PENDING,
	PROBE_OK,
	PROBE_FAILED, /* err says why */
};

/*
 * When to probe, from systemd's watchdog interval: a probe (and a ping)
 * every half interval, each given a quarter of it (200 ms .. 5 s) to come
 * back, and a retry a quarter of the probe interval (1 s at most) after a
 * failure.  All 0 when there is no watchdog.
 */
struct probe_sched {
	uint64_t every_ms;
	uint64_t deadline_ms;
	uint64_t retry_ms;
	uint64_t watchdog_ms; /* the interval used, after clamping */
	int clamped;          /* the interval was under 1 s: say so once */
};

struct probe {
	int fd; /* -1 when no probe is running */
	int epfd; /* where fd is watched; -1: not watched */
	uint32_t tag;
	uint32_t events; /* what fd is watched for now */
	int sent;
	int proxied; /* the target expects a PROXY header: a v2 LOCAL first */
	size_t got;
	uint64_t deadline_ms;
	unsigned char token[PROBE_TOKEN_LEN];
	unsigned char reply[PROBE_TOKEN_LEN];
	char err[160];
	struct probe_sched sched;
};

/* Pure: the schedule for WATCHDOG_USEC (0: no watchdog). */
struct probe_sched probe_schedule(uint64_t watchdog_usec);

/*
 * Pure: what a probe socket waits for.  EPOLLOUT until the token is
 * sent (the connect completing), then EPOLLIN only: a connected socket
 * is always writable, so watching for EPOLLOUT after the send would wake
 * a level-triggered loop on every turn until the reply comes.
 */
uint32_t probe_wants(int sent);

/*
 * Pure: skip this probe?  A pool whose every ready worker is at its
 * capacity (prefork with each worker on a connection, a thread pool with
 * every thread busy, events at max_connections) is busy, not broken: the
 * probe would only wait in the accept queue and fail, and recycling the
 * pool would drop every client.  Its liveness is then the heartbeats'
 * (worker_timeout).  1 when ready > 0 and full == ready.
 */
int probe_skip_when_full(unsigned ready, unsigned full);

/* No probe running; the schedule for WATCHDOG_USEC watchdog_usec. */
void probe_init(struct probe *p, uint64_t watchdog_usec);

/*
 * Where to probe a listener: its own address, or the loopback address of
 * its family when it is bound to a wildcard.  -1 if it has no address.
 */
int probe_target(int lfd, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Start a probe at now_ms (its deadline is now_ms + sched.deadline_ms)
 * and watch its socket in epfd with data.u32 = tag, for what probe_wants
 * says.  Returns the fd, or -1 with err set.
 */
int probe_start(struct probe *p, const struct sockaddr *sa, socklen_t len,
    uint64_t now_ms, int epfd, uint32_t tag);

/*
 * The socket is ready: advance, and narrow what it is watched for once
 * the token is sent.  Closes the socket when done.
 */
enum probe_result probe_event(struct probe *p);

/* Fail the probe if its deadline has passed. */
enum probe_result probe_expire(struct probe *p, uint64_t now_ms);

void probe_cancel(struct probe *p);

#endif
