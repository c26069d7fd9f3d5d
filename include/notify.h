/*
 * notify: what the service manager is told (libsystemd's sd_notify).
 *
 * Every call is a no-op when NOTIFY_SOCKET is unset, so the daemon calls
 * these unconditionally.  Only the master notifies (NotifyAccess=main).
 */
#ifndef ECHOD_NOTIFY_H
#define ECHOD_NOTIFY_H

void notify_ready(const char *status);
void notify_status(const char *status);
void notify_stopping(const char *status);
void notify_failure(int err, const char *status);

#endif
