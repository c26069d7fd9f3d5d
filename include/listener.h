/*
 * listener: listening addresses and sockets.
 *
 * Parses "host:port", "[v6]:port" and "*:port" (numeric only: echod never
 * resolves names), opens the sockets, or adopts the ones systemd passed
 * (LISTEN_FDS).  Reports errors in the caller's buffer; never exits.
 */
#ifndef ECHOD_LISTENER_H
#define ECHOD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool any; /* "*": all IPv4 and IPv6 addresses (dual-stack [::]) */
};

/* Parse spec; -1 with a message in err ("'x': why; expected ..."). */
int listener_parse(const char *spec, struct listen_addr *out, char *err,
    size_t errlen);

/* "127.0.0.1:7007" or "[::1]:7007", numerically. */
void listener_format(const struct sockaddr *sa, char *buf, size_t len);

/*
 * Open a non-blocking, close-on-exec listening socket.  For an "any"
 * address it tries dual-stack [::] first and falls back to 0.0.0.0 where
 * the host has no IPv6.  Returns the fd, or -1 with a message in err.
 */
int listener_open(const struct listen_addr *la, int backlog, char *err,
    size_t errlen);

#endif
