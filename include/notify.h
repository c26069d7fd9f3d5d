/*
 * notify: what the service manager is told (the sd_notify protocol).
 *
 * Every call is a no-op when NOTIFY_SOCKET is unset, so the daemon calls
 * these unconditionally.  Only the master notifies (NotifyAccess=main).
 *
 * No call ever blocks.  A state message (READY, RELOADING, STOPPING,
 * STATUS, ERRNO, WATCHDOG) that the manager's socket cannot take now is
 * kept, merged with what comes after it (only the latest state matters),
 * and sent by notify_flush() once the socket takes it again; the master
 * calls notify_flush() from its timer at notify_retry_at().  An fd store
 * message that cannot be sent now is dropped, counted and logged.
 */
#ifndef ECHOD_NOTIFY_H
#define ECHOD_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#define NOTIFY_MSG_MAX 2048

void notify_ready(const char *status);
void notify_status(const char *status);
void notify_stopping(const char *status);
void notify_failure(int err, const char *status);
void notify_reloading(void);
/* RELOADING=1 with another STATUS= than "reloading" (an upgrade). */
void notify_upgrading(const char *status);
void notify_watchdog(void);
/*
 * The watchdog interval systemd expects pings within (WATCHDOG_USEC), in
 * microseconds, or 0 when there is no watchdog for us.
 */
uint64_t notify_watchdog_usec(void);
/* Hand fd to systemd's fd store under name, or take it back out. */
void notify_fdstore(int fd, const char *name);
void notify_fdstore_remove(const char *name);

/* Try again to send what is pending. */
void notify_flush(void);
/*
 * When notify_flush() should run next (CLOCK_MONOTONIC, ms), or
 * UINT64_MAX when nothing is pending.
 */
uint64_t notify_retry_at(void);

/* ---- the pure part, for tests ---- */

enum notify_event {
	NOTIFY_EV_READY,
	NOTIFY_EV_RELOADING,
	NOTIFY_EV_STOPPING,
	NOTIFY_EV_STATUS,
	NOTIFY_EV_FAILURE,
	NOTIFY_EV_WATCHDOG,
};

/* What a datagram carries. */
#define NOTIFY_RELOADING 0x01u
#define NOTIFY_READY 0x02u
#define NOTIFY_STOPPING 0x04u
#define NOTIFY_ERRNO 0x08u
#define NOTIFY_STATUS 0x10u
#define NOTIFY_WATCHDOG 0x20u

/* What is still to be said. */
struct notify_pending {
	unsigned what; /* NOTIFY_* bits */
	uint64_t reload_usec;
	int err;
	char status[1024];
};

/*
 * Add an event to what is pending.  The latest state wins: RELOADING
 * drops an unsent READY (that reload's end is what READY will say),
 * STOPPING drops both, a STATUS replaces the one before.  status may be
 * NULL; err is for NOTIFY_EV_FAILURE, usec for NOTIFY_EV_RELOADING.
 */
void notify_merge(struct notify_pending *p, enum notify_event ev,
    const char *status, int err, uint64_t usec);

/*
 * The next datagram for what is pending, into buf; returns the bits it
 * carries (0: nothing pending).  RELOADING goes on its own, before the
 * rest, so that a READY in the same datagram cannot read as its end
 * before the reload was seen to begin.
 */
unsigned notify_next(const struct notify_pending *p, char *buf, size_t len);

/* The datagram carrying bits was sent: forget them. */
void notify_sent(struct notify_pending *p, unsigned bits);

/* Pure: the wait before retry number n (0, 1, ...): 50 ms doubling to 1 s. */
uint64_t notify_backoff_ms(unsigned n);

#endif
