/*
 * inject: see inject.h.
 *
 * The steps, x86-64 only: seize the process and interrupt it, so that it
 * stops (normally inside epoll_wait) with no signal sent; save its
 * registers; write the path below its stack's red zone; point the
 * instruction pointer at the two-byte syscall instruction it was stopped
 * after, with the registers of an openat() call and orig_rax = -1 so that
 * the kernel does not treat it as a syscall to restart; single-step over
 * that instruction; read the result; put every register back and detach.
 * Restoring orig_rax and rax lets the kernel restart the interrupted
 * epoll_wait as it would after any signal.
 */
#include "inject.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

static enum inj_result fail(char *, size_t, enum inj_result, const char *,
    ...) __attribute__((format(printf, 4, 5)));

static enum inj_result
fail(char *err, size_t errlen, enum inj_result r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

#if defined(__x86_64__)

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * waitpid() for a tracee that is not our child cannot time out, so poll
 * with WNOHANG until the deadline.  Returns 1 with *st set, 0 on timeout,
 * -1 on error.
 */
static int
wait_stop(pid_t pid, int *st, int timeout_ms)
{
	long end = now_ms() + timeout_ms;
	pid_t r;

	for (;;) {
		r = waitpid(pid, st, __WALL | WNOHANG);
		if (r == pid)
			return 1;
		if (r == -1 && errno != EINTR)
			return -1;
		if (now_ms() >= end)
			return 0;
		poll(NULL, 0, 2);
	}
}

/* Copies s (with its NUL) to addr in the tracee, a word at a time. */
static int
poke_string(pid_t pid, unsigned long addr, const char *s)
{
	size_t len = strlen(s) + 1, i;
	long word;

	for (i = 0; i < len; i += sizeof(long)) {
		word = 0;
		memcpy(&word, s + i, len - i < sizeof(long) ?
		    len - i : sizeof(long));
		if (ptrace(PTRACE_POKEDATA, pid, (void *)(addr + i),
		    (void *)word) == -1)
			return -1;
	}
	return 0;
}

/* Is there a syscall instruction (0f 05) just before ip? */
static int
after_syscall_insn(pid_t pid, unsigned long ip)
{
	long word;

	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, pid, (void *)(ip - 2), NULL);
	if (errno != 0)
		return 0;
	return (word & 0xffff) == 0x050f;
}

/*
 * The process is stopped; run the call and restore it.  Returns the
 * result; the caller detaches unless the process died.
 */
static enum inj_result
run_call(pid_t pid, const char *path, long *ret, char *err, size_t errlen,
    int timeout_ms)
{
	struct user_regs_struct saved, r;
	unsigned long addr;
	int st, w;

	if (ptrace(PTRACE_GETREGS, pid, NULL, &saved) == -1)
		return fail(err, errlen, INJ_FAILED, "GETREGS: %s",
		    strerror(errno));
	if (!after_syscall_insn(pid, saved.rip))
		return fail(err, errlen, INJ_FAILED, "stopped at %#llx, not "
		    "after a syscall instruction", saved.rip);
	/* Below the 128-byte red zone, 16-byte aligned. */
	addr = (saved.rsp - 1024) & ~15UL;
	if (poke_string(pid, addr, path) == -1)
		return fail(err, errlen, INJ_FAILED, "POKEDATA: %s",
		    strerror(errno));
	r = saved;
	r.rax = SYS_openat;
	r.orig_rax = (unsigned long long)-1;
	r.rdi = (unsigned long long)(long)AT_FDCWD;
	r.rsi = addr;
	r.rdx = O_RDONLY;
	r.r10 = 0;
	r.rip = saved.rip - 2;
	if (ptrace(PTRACE_SETREGS, pid, NULL, &r) == -1)
		return fail(err, errlen, INJ_FAILED, "SETREGS: %s",
		    strerror(errno));
	if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) == -1)
		return fail(err, errlen, INJ_FAILED, "SINGLESTEP: %s",
		    strerror(errno));
	if ((w = wait_stop(pid, &st, timeout_ms)) != 1)
		return fail(err, errlen, INJ_FAILED, "no stop after the "
		    "call (%s)", w == 0 ? "timeout" : strerror(errno));
	if (WIFSIGNALED(st)) {
		*ret = WTERMSIG(st);
		return INJ_KILLED;
	}
	if (WIFEXITED(st))
		return fail(err, errlen, INJ_FAILED, "exited with %d",
		    WEXITSTATUS(st));
	if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGSYS) {
		/* A filter that traps: deliver the signal and see. */
		*ret = SIGSYS;
		ptrace(PTRACE_DETACH, pid, NULL, (void *)(long)SIGSYS);
		return INJ_KILLED;
	}
	if (ptrace(PTRACE_GETREGS, pid, NULL, &r) == -1)
		return fail(err, errlen, INJ_FAILED, "GETREGS after: %s",
		    strerror(errno));
	*ret = (long)r.rax;
	if (ptrace(PTRACE_SETREGS, pid, NULL, &saved) == -1)
		return fail(err, errlen, INJ_FAILED, "SETREGS back: %s",
		    strerror(errno));
	return INJ_DONE;
}

enum inj_result
inj_openat(pid_t pid, const char *path, long *ret, char *err,
    size_t errlen, int timeout_ms)
{
	enum inj_result res;
	int st, w;

	err[0] = '\0';
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) == -1)
		return errno == EPERM ? fail(err, errlen, INJ_REFUSED,
		    "ptrace: %s", strerror(errno)) : fail(err, errlen,
		    INJ_FAILED, "SEIZE: %s", strerror(errno));
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) == -1) {
		res = fail(err, errlen, INJ_FAILED, "INTERRUPT: %s",
		    strerror(errno));
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		return res;
	}
	if ((w = wait_stop(pid, &st, timeout_ms)) != 1 || !WIFSTOPPED(st)) {
		res = fail(err, errlen, INJ_FAILED, "did not stop (%s)",
		    w == 0 ? "timeout" : w == -1 ? strerror(errno) :
		    "it ended");
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		return res;
	}
	res = run_call(pid, path, ret, err, errlen, timeout_ms);
	if (res != INJ_KILLED)
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
	return res;
}

#else

enum inj_result
inj_openat(pid_t pid, const char *path, long *ret, char *err,
    size_t errlen, int timeout_ms)
{
	(void)pid;
	(void)path;
	(void)ret;
	(void)timeout_ms;
	return fail(err, errlen, INJ_UNSUPPORTED, "x86-64 only");
}

#endif
