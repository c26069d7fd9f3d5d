/*
 * upgrade: the master re-executes its binary in place on SIGUSR2 (same
 * PID: systemd sees no restart).  The old image hands the new one its
 * listeners, its workers (which drain and are reaped by the new image)
 * and, with -d, its locked pidfile, in ECHOD_UPGRADE:
 *
 *   v=0.1.0;ls=5:listen-127.0.0.1_7007:0,6:systemd:1;workers=120,121;pidfd=7;c=1733490000,12,...
 *
 * ls: fd, name (listener_fdname of the spec, or "systemd" for a socket
 * systemd passed) and 1 for a proxy_listen listener; pidfd -1: none;
 * c (optional): the counters, metrics_pack's numbers, so that /metrics
 * stays monotonic across the upgrade.  A count the new image does not
 * expect (another version's list) is not used, and said so.
 */
#ifndef ECHOD_UPGRADE_H
#define ECHOD_UPGRADE_H

#include <stddef.h>
#include <sys/types.h>

#include "conf.h"
#include "listener.h"

#define UPGRADE_ENV "ECHOD_UPGRADE"
#define UPGRADE_PIDS_MAX (3 * CONF_WORKERS_MAX)
#define UPGRADE_CHECK_MS 3000 /* the new binary's -t must exit by then */
#define UPGRADE_COUNTERS_MAX 64

struct upgrade_fd {
	int fd;
	char name[LISTENER_NAME_MAX];
	int proxy;
};

struct upgrade_handover {
	char from[32]; /* the old image's version */
	struct upgrade_fd ls[LISTENER_MAX];
	size_t nls;
	pid_t workers[UPGRADE_PIDS_MAX];
	size_t nworkers;
	int pidfd;
	uint64_t counters[UPGRADE_COUNTERS_MAX];
	size_t ncounters; /* 0: none handed over */
};

/* h as the variable's value.  0, or -1 if it does not fit.  Pure. */
int upgrade_format(const struct upgrade_handover *h, char *buf, size_t len);
/* The value back.  0, or -1 with err (nothing may be trusted).  Pure. */
int upgrade_parse(const char *s, struct upgrade_handover *h, char *err,
    size_t errlen);
/* The argv to execute: the saved one, plus "-c abs" when -c was relative
 * (and not already its last two words), plus "-t" for the check.  Pure:
 * out holds at most argc + 3 pointers and a NULL. */
size_t upgrade_argv(char *const *argv, size_t argc, const char *config_abs,
    int test, char **out);

/* ---- main.c ---- */

/* At start: the binary's path (/proc/self/exe), argv (before proctitle
 * overwrites it) and the absolute -c if main made a relative one so. */
void upgrade_init(int argc, char **argv, const char *config_abs_path);
/* ECHOD_UPGRADE taken out of the environment: 0 none, 1 h filled, -1 bad. */
int upgrade_take(struct upgrade_handover *h, char *err, size_t errlen);
/* Close every inherited descriptor from 3 up but h's. */
void upgrade_close_inherited(const struct upgrade_handover *h);
/* The listener fds of h as listener_acquire_given wants them. */
int upgrade_fds(const struct upgrade_handover *h, int *fds,
    char (*names)[LISTENER_NAME_MAX]);
/* Remember h's workers (the new image's master ends them once ready) and
 * its counters (upgrade_carry). */
void upgrade_adopt_workers(const struct upgrade_handover *h);

#endif
