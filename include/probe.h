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

enum probe_result {
	PROBE_PENDING,
	PROBE_OK,
	PROBE_FAILED, /* err says why */
};

struct probe {
	int fd; /* -1 when no probe is running */
	int sent;
	size_t got;
	uint64_t deadline_ms;
	unsigned char token[PROBE_TOKEN_LEN];
	unsigned char reply[PROBE_TOKEN_LEN];
	char err[160];
};

void probe_init(struct probe *p);

/*
 * Where to probe a listener: its own address, or the loopback address of
 * its family when it is bound to a wildcard.  -1 if it has no address.
 */
int probe_target(int lfd, struct sockaddr_storage *ss, socklen_t *len);

/* Start a probe; returns the fd to watch for EPOLLIN|EPOLLOUT, or -1. */
int probe_start(struct probe *p, const struct sockaddr *sa, socklen_t len,
    uint64_t deadline_ms);

/* The socket is ready: advance.  Closes the socket when done. */
enum probe_result probe_event(struct probe *p);

/* Fail the probe if its deadline has passed. */
enum probe_result probe_expire(struct probe *p, uint64_t now_ms);

void probe_cancel(struct probe *p);

#endif
