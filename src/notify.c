/*
 * notify: thin wrappers around sd_notifyf(3).
 *
 * Failures to notify are not errors: a daemon must run the same with no
 * service manager listening.
 */
#include <systemd/sd-daemon.h>

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
