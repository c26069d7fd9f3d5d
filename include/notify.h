/*
 * notify: what the service manager is told (libsystemd's sd_notify).
 *
 * Every call is a no-op when NOTIFY_SOCKET is unset, so the daemon calls
 * these unconditionally.  Only the master notifies (NotifyAccess=main).
 */
#ifndef ECHOD_NOTIFY_H
#define ECHOD_NOTIFY_H

#include <stdint.h>

void notify_ready(const char *status);
void notify_status(const char *status);
void notify_stopping(const char *status);
void notify_failure(int err, const char *status);
void notify_reloading(void);
void notify_watchdog(void);
/*
 * The watchdog interval systemd expects pings within (WATCHDOG_USEC), in
 * microseconds, or 0 when there is no watchdog for us.
 */
uint64_t notify_watchdog_usec(void);
/* Hand fd to systemd's fd store under name, or take it back out. */
void notify_fdstore(int fd, const char *name);
void notify_fdstore_remove(const char *name);

#endif
