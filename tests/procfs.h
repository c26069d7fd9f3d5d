/*
 * procfs: what the integration suites read about a process in /proc.
 *
 * Small files read whole in one read(2) (a /proc file is generated at
 * open, so it is consistent), the fields of /proc/PID/stat after the
 * "(comm)" that may hold spaces, the numbers of /proc/PID/status, the
 * targets of /proc/PID/fd.  Every function returns a "not there" value
 * (-1, 0) for a process that is gone: a test decides what that means.
 * Nothing here asserts, sleeps without a deadline or changes a process.
 */
#ifndef ECHOD_TEST_PROCFS_H
#define ECHOD_TEST_PROCFS_H

#include <stddef.h>
#include <sys/types.h>

/* Read path (any small file; at most len - 1 bytes), NUL-terminated;
 * bytes, or -1. */
int pf_read(const char *path, char *buf, size_t len);
/* The same for /proc/PID/name ("stat", "status", "cmdline", ...). */
int pf_read_pid(pid_t pid, const char *name, char *buf, size_t len);

/* Fields of /proc/PID/stat. */
struct pf_stat {
	char state;  /* R, S, D, T (stopped), t, Z (zombie), ... */
	pid_t ppid, pgrp, sid;
	unsigned long long utime, stime; /* clock ticks */
};
/* 0, or -1 if pid is gone. */
int pf_stat(pid_t pid, struct pf_stat *st);
/* The state letter of pid, or 0 if it is gone. */
int pf_state(pid_t pid);
/*
 * Wait until pid is stopped (state T) when stopped is 1, or is not when
 * it is 0; polls every half millisecond.  1 if it got there, 0 on
 * timeout or if pid is gone.
 */
int pf_wait_stopped(pid_t pid, int stopped, int timeout_ms);

/* A number of a /proc/PID/status line ("VmRSS", "VmSize", ...), or -1. */
long pf_status_num(pid_t pid, const char *field);

/*
 * Call fn for each open descriptor of pid with what it points at
 * ("socket:[123]", "anon_inode:[eventpoll]", a path), until fn returns
 * non-zero: that value, 0 when every descriptor was seen, -1 if pid is
 * gone.
 */
int pf_fds(pid_t pid, int (*fn)(void *arg, int fd, const char *target),
    void *arg);
/* Where pid's descriptor fd points, into buf; 0, or -1. */
int pf_fd_target(pid_t pid, int fd, char *buf, size_t len);

/* Open descriptors of pid; -1 if it is gone. */
int pf_count_fds(pid_t pid);
/* Does one of pid's descriptors point at target ("socket:[123]", a path)? */
int pf_has_fd(pid_t pid, const char *target);

/*
 * Is sig pending for pid as a whole (ShdPnd), or, with thread, for its
 * main thread too (SigPnd)?  0 also when pid is gone.
 */
int pf_sig_pending(pid_t pid, int sig, int thread);

#endif
