/*
 * notify: thin wrappers around sd_notifyf(3).
 *
 * Failures to notify are not errors: a daemon must run the same with no
 * service manager listening.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "notify.h"

void
notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
notify_status(const char *status)
{
	sd_notifyf(0, "STATUS=%s", status);
}

void
notify_stopping(const char *status)
{
	sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

void
notify_failure(int err, const char *status)
{
	if (err != 0)
		sd_notifyf(0, "ERRNO=%d\nSTATUS=%s", err, status);
	else
		sd_notifyf(0, "STATUS=%s", status);
}

void
notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000);
}

void
notify_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}

uint64_t
notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

/*
 * systemd 254 and later say in $FDSTORE how many fds the store takes; 0
 * means none.  Older ones do not say: offer the fd, which they ignore
 * when the unit has no FileDescriptorStoreMax=.
 */
static int
fdstore_wanted(void)
{
	const char *s = getenv("FDSTORE");

	return s == NULL || strtol(s, NULL, 10) > 0;
}

void
notify_fdstore(int fd, const char *name)
{
	char msg[128];

	if (!fdstore_wanted() || getenv("NOTIFY_SOCKET") == NULL)
		return;
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
}

void
notify_fdstore_remove(const char *name)
{
	sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
}
