/*
 * proctree: the arithmetic behind echobench's "server CPU per operation",
 * pure, so that tests/check_benchcpu.c can test it on tables.  echobench
 * reads /proc; nothing here does.
 *
 * What a server spends is what its whole process tree spends: the root
 * pid's user + system time and that of every live descendant, each with
 * its cutime + cstime (the time of the children it reaped, and of theirs).
 * A process that exits between two samples leaves the sum of the live ones
 * and reappears, whole, in its parent's cutime when the parent reaps it,
 * so the difference of two sums is what the tree spent in between (threads
 * included: /proc/PID/stat counts the whole thread group, exited threads
 * too).  Only a child that nobody in the tree reaps (one left to init, or
 * under SIGCHLD SIG_IGN) is lost.
 *
 * /proc/PID/stat gives its times in clock ticks (1/100 s), utime and stime
 * each rounded down: up to two ticks lost per process and sample.  With a
 * process per connection, 256 children that each spend a few ms over the
 * window all read 0 and the sum sees nothing.  So a process's own time is
 * the larger of that and /proc/PID/schedstat's run time, exact in ns but
 * of one thread only (the main one): exact for a single-threaded process,
 * and for a threaded one never below the ticks.  What is left of the
 * rounding (threaded processes, reaped children) is counted as "ticked"
 * processes, so a caller can say when a figure is coarse.
 *
 * Header only (static inline): echobench.c is one file, built on its own.
 */
#ifndef ECHOD_BENCH_PROCTREE_H
#define ECHOD_BENCH_PROCTREE_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* The fields of a /proc/PID/stat line that the sums need. */
struct pt_stat {
	char state; /* R, S, D, Z (zombie), ... */
	pid_t ppid;
	unsigned long long utime, stime;   /* clock ticks, its own */
	unsigned long long cutime, cstime; /* ticks of its reaped children */
};

/*
 * Parse one /proc/PID/stat line.  The command name is in parentheses and
 * may itself hold spaces and ')': the fields start after the last ')'.
 * 0, or -1 if the line is not one.
 */
static inline int
pt_stat_parse(const char *line, struct pt_stat *st)
{
	const char *p;
	long long cu, cs;
	int ppid;

	memset(st, 0, sizeof(*st));
	/* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime (fields 3 to 17) */
	if ((p = strrchr(line, ')')) == NULL ||
	    sscanf(p + 1,
	        " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld "
	        "%lld",
	        &st->state, &ppid, &st->utime, &st->stime, &cu, &cs) != 6 ||
	    cu < 0 || cs < 0)
		return -1;
	st->ppid = ppid;
	st->cutime = (unsigned long long)cu;
	st->cstime = (unsigned long long)cs;
	return 0;
}

/* What one process of the tree adds to the tree's sum, in ticks. */
static inline unsigned long long
pt_stat_ticks(const struct pt_stat *st)
{
	return st->utime + st->stime + st->cutime + st->cstime;
}

/*
 * The same in nanoseconds, hz ticks a second, with the process's own time
 * raised to sched_ns (its main thread's run time from /proc/PID/schedstat;
 * -1 if unknown) where that is larger.  *ticked: the figure rests on
 * rounded ticks (its own time, or its reaped children's).
 */
static inline unsigned long long
pt_proc_ns(const struct pt_stat *st, long hz, long long sched_ns, bool *ticked)
{
	unsigned long long tick =
	    hz > 0 ? 1000000000ULL / (unsigned long long)hz : 0;
	unsigned long long own = (st->utime + st->stime) * tick;
	unsigned long long kids = (st->cutime + st->cstime) * tick;

	*ticked = kids > 0;
	if (sched_ns >= 0 && (unsigned long long)sched_ns >= own)
		own = (unsigned long long)sched_ns;
	else if (own > 0)
		*ticked = true;
	return own + kids;
}

/*
 * Mark root and its descendants among n processes (pid[i], ppid[i]):
 * member[i] is set for each; returns how many (0 if root is not there).
 * A pass marks every process whose parent is marked, until one marks
 * none: at most depth + 1 passes, each bounded by n.
 */
static inline long
pt_tree(const pid_t *pid, const pid_t *ppid, long n, pid_t root, bool *member)
{
	long i, j, count = 0;
	bool grew = true;

	for (i = 0; i < n; i++) {
		member[i] = pid[i] == root;
		count += member[i];
	}
	if (count == 0)
		return 0;
	while (grew && count < n) {
		grew = false;
		for (i = 0; i < n; i++) {
			if (member[i] || ppid[i] == pid[i])
				continue;
			for (j = 0; j < n; j++)
				if (member[j] && pid[j] == ppid[i])
					break;
			if (j < n) {
				member[i] = true;
				count++;
				grew = true;
			}
		}
	}
	return count;
}

/*
 * Microseconds of CPU per unit (a connection, a round trip, a megabyte)
 * from two tree sums in nanoseconds: -1 when it cannot be said (no units,
 * a sum that went backwards: the tree lost a child it did not reap).
 */
static inline double
pt_us_per(
    unsigned long long before_ns, unsigned long long after_ns, double units)
{
	if (units <= 0 || after_ns < before_ns)
		return -1;
	return (double)(after_ns - before_ns) / 1e3 / units;
}

#endif
