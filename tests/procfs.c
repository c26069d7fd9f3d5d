/*
 * procfs: reading /proc for the integration suites (see procfs.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "procfs.h"

int
pf_read(const char *path, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r = 0;
	int fd;

	if (len == 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while (n + 1 < len && (r = read(fd, buf + n, len - n - 1)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	return r < 0 && n == 0 ? -1 : (int)n;
}

int
pf_read_pid(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	return pf_read(path, buf, len);
}

int
pf_stat(pid_t pid, struct pf_stat *st)
{
	char buf[1024], *rp;
	int ppid, pgrp, sid;

	memset(st, 0, sizeof(*st));
	/* After "(comm)": state ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime stime. */
	if (pf_read_pid(pid, "stat", buf, sizeof(buf)) <= 0 ||
	    (rp = strrchr(buf, ')')) == NULL ||
	    sscanf(rp + 1, " %c %d %d %d %*d %*d %*u %*u %*u %*u %*u %llu "
	    "%llu", &st->state, &ppid, &pgrp, &sid, &st->utime,
	    &st->stime) != 6)
		return -1;
	st->ppid = ppid;
	st->pgrp = pgrp;
	st->sid = sid;
	return 0;
}

int
pf_state(pid_t pid)
{
	struct pf_stat st;

	return pf_stat(pid, &st) == 0 ? st.state : 0;
}

int
pf_wait_stopped(pid_t pid, int stopped, int timeout_ms)
{
	struct timespec half = { 0, 500 * 1000 };
	long long deadline = h_now_ms() + timeout_ms;
	int s;

	do {
		if ((s = pf_state(pid)) == 0)
			return 0;
		if ((s == 'T') == (stopped != 0))
			return 1;
		nanosleep(&half, NULL);
	} while (h_now_ms() < deadline);
	return 0;
}

long
pf_status_num(pid_t pid, const char *field)
{
	char buf[8192], key[64];
	const char *s;

	if (pf_read_pid(pid, "status", buf, sizeof(buf)) <= 0)
		return -1;
	/* At a line start: "voluntary_..." is inside "nonvoluntary_...";
	 * the first line ("Name:") has no newline before it. */
	snprintf(key, sizeof(key), "%s:", field);
	if (strncmp(buf, key, strlen(key)) == 0)
		s = buf;
	else {
		snprintf(key, sizeof(key), "\n%s:", field);
		if ((s = strstr(buf, key)) == NULL)
			return -1;
	}
	return strtol(s + strlen(key), NULL, 10);
}

int
pf_fd_target(pid_t pid, int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	if (len == 0 || (n = readlink(path, buf, len - 1)) <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

int
pf_fds(pid_t pid, int (*fn)(void *arg, int fd, const char *target),
    void *arg)
{
	char dir[64], target[4096];
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if ((d = opendir(dir)) == NULL)
		return -1;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = atoi(de->d_name);
		if (pf_fd_target(pid, fd, target, sizeof(target)) == 0)
			rc = fn(arg, fd, target);
	}
	closedir(d);
	return rc;
}

static int
count_one(void *arg, int fd, const char *target)
{
	(void)fd;
	(void)target;
	(*(int *)arg)++;
	return 0;
}

int
pf_count_fds(pid_t pid)
{
	int n = 0;

	return pf_fds(pid, count_one, &n) == -1 ? -1 : n;
}

static int
is_target(void *arg, int fd, const char *target)
{
	(void)fd;
	return strcmp(target, arg) == 0;
}

int
pf_has_fd(pid_t pid, const char *target)
{
	return pf_fds(pid, is_target, (void *)(uintptr_t)target) == 1;
}

/* The signal mask of a "\nName:\t<hex>" line of a status text; 0. */
static unsigned long long
status_mask(const char *buf, const char *name)
{
	unsigned long long m;
	const char *s = strstr(buf, name);

	if (s == NULL || sscanf(s + strlen(name), "%llx", &m) != 1)
		return 0;
	return m;
}

int
pf_sig_pending(pid_t pid, int sig, int thread)
{
	char buf[8192];
	unsigned long long mask;

	if (sig < 1 || sig > 64 ||
	    pf_read_pid(pid, "status", buf, sizeof(buf)) <= 0)
		return 0;
	mask = status_mask(buf, "\nShdPnd:");
	if (thread)
		mask |= status_mask(buf, "\nSigPnd:");
	return (mask >> (sig - 1)) & 1;
}
