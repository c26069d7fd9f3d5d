/*
 * sandbox: a seccomp allow-list for workers, built with libseccomp.
 *
 * A worker that has set itself up needs little: epoll, accept, read and
 * send, close, the clock, memory for pending buffers, its log line, and
 * exit.  Anything else (opening files, exec, new sockets, ptrace, ...) is
 * a compromised or broken worker: the kernel kills it, the master logs
 * "killed by signal 31" and replaces it, the rest of the pool serves on.
 * Nothing here logs or exits: the worker decides (sandbox_decide).
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const int allowed[] = {
	/* the loop */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(accept4), SCMP_SYS(read), SCMP_SYS(recvfrom),
	SCMP_SYS(sendto), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(setsockopt), SCMP_SYS(getppid),
	SCMP_SYS(getpid), SCMP_SYS(gettid),
	/* time (mostly the vDSO, but not everywhere) */
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	/* memory: pending buffers come from malloc */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise),
	/* signals and the end */
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
	/* abort() for a broken invariant */
	SCMP_SYS(tgkill), SCMP_SYS(rt_sigaction),
	/* stdio's first use of a stream */
	SCMP_SYS(fstat), SCMP_SYS(newfstatat),
};

/* SANDBOX_NEED_POLL: the models that wait on one socket at a time. */
static const int allowed_poll[] = {
	SCMP_SYS(poll), SCMP_SYS(ppoll),
};

/*
 * SANDBOX_NEED_THREADS: what glibc's pthread_create and a thread's start
 * and end make (clone3, or clone where clone3 is refused; the stack's
 * guard page; the robust-futex list and rseq registration of a new
 * thread), and futex for the mutex and condition variables.
 */
static const int allowed_threads[] = {
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(futex),
	SCMP_SYS(mprotect), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(sched_yield),
};

/*
 * SANDBOX_NEED_FORK: fork (clone; the child's robust list), reaping
 * (wait4), the children's death signal and title (prctl), killing them
 * when the worker stops (kill), and futex for the lock the worker and its
 * children share on the per-client table (serve.c).
 */
static const int allowed_fork[] = {
	SCMP_SYS(clone), SCMP_SYS(set_robust_list), SCMP_SYS(wait4),
	SCMP_SYS(prctl), SCMP_SYS(kill), SCMP_SYS(futex),
};

const char *
sandbox_state_name(int state)
{
	static const char *const names[] = {
		[SANDBOX_UNKNOWN] = "-",
		[SANDBOX_OFF] = "off",
		[SANDBOX_ON] = "on",
		[SANDBOX_ON_THREAD] = "on (kill thread)",
		[SANDBOX_NO_BUILD] = "off (this build)",
		[SANDBOX_FAILED] = "failed (running without)",
	};

	return state >= 0 && (size_t)state < NELEM(names) ? names[state] : "?";
}

static size_t
add(int *out, size_t max, size_t n, const int *calls, size_t ncalls)
{
	size_t i;

	for (i = 0; i < ncalls; i++, n++)
		if (n < max)
			out[n] = calls[i];
	return n;
}

size_t
sandbox_syscalls(unsigned needs, int *out, size_t max)
{
	size_t n;

	n = add(out, max, 0, allowed, NELEM(allowed));
	if (needs & SANDBOX_NEED_POLL)
		n = add(out, max, n, allowed_poll, NELEM(allowed_poll));
	if (needs & SANDBOX_NEED_THREADS)
		n = add(out, max, n, allowed_threads, NELEM(allowed_threads));
	if (needs & SANDBOX_NEED_FORK)
		n = add(out, max, n, allowed_fork, NELEM(allowed_fork));
	return n;
}

int
sandbox_supported(void)
{
#ifdef SANITIZED
	/* Their runtimes make system calls no allow-list can foresee. */
	return 0;
#else
	return 1;
#endif
}

/*
 * KILL_PROCESS needs the seccomp() system call (API level 3).  Where it
 * is refused (systemd's SystemCallFilter=@system-service without
 * "seccomp", before systemd 25x) or the kernel is older than 4.14,
 * libseccomp falls back to prctl() and only KILL_THREAD is available:
 * a worker is one thread, so that ends it all the same.
 */
static scmp_filter_ctx
init_ctx(int *state, char *err, size_t errlen)
{
	scmp_filter_ctx ctx;

	*state = SANDBOX_ON;
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) != NULL)
		return ctx;
	*state = SANDBOX_ON_THREAD;
	snprintf(err, errlen, "KILL_PROCESS is not available (libseccomp "
	    "API level %u: the seccomp() system call is refused or too old, "
	    "e.g. by a SystemCallFilter= without \"seccomp\"); using "
	    "KILL_THREAD, which ends a one-thread worker all the same",
	    seccomp_api_get());
	if ((ctx = seccomp_init(SCMP_ACT_KILL_THREAD)) != NULL)
		return ctx;
	snprintf(err, errlen, "seccomp_init failed for KILL_PROCESS and "
	    "KILL_THREAD (libseccomp API level %u: seccomp is not usable "
	    "here)", seccomp_api_get());
	return NULL;
}

int
sandbox_enter(unsigned needs, char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	int calls[64];
	size_t i, n;
	int rc = 0, state;

	err[0] = '\0';
#ifdef SANITIZED
	snprintf(err, errlen, "not in a sanitizer build");
	return SANDBOX_NO_BUILD;
#endif
	/* The time zone is read now, not from inside the sandbox. */
	tzset();
	if ((ctx = init_ctx(&state, err, errlen)) == NULL)
		return -1;
	n = sandbox_syscalls(needs, calls, NELEM(calls));
	for (i = 0; i < n && i < NELEM(calls) && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(err, errlen, "the kernel refused the filter: %s",
		    strerror(-rc));
		return -1;
	}
	return state;
}

struct probe_result {
	int rc;
	char err[240];
};

int
sandbox_probe(unsigned needs, char *err, size_t errlen)
{
	struct probe_result r;
	ssize_t n;
	pid_t pid;
	int p[2], st;

	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		snprintf(err, errlen, "cannot probe: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		memset(&r, 0, sizeof(r));
		r.rc = sandbox_enter(needs, r.err, sizeof(r.err));
		/* write and exit_group are on every allow-list. */
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	do
		n = read(p[0], &r, sizeof(r));
	while (n == -1 && errno == EINTR);
	close(p[0]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (n != sizeof(r)) {
		snprintf(err, errlen, "the probe ended without a word "
		    "(status %#x)", st);
		return -1;
	}
	r.err[sizeof(r.err) - 1] = '\0';
	snprintf(err, errlen, "%s", r.err);
	return r.rc;
}

struct sandbox_verdict
sandbox_decide(int mode, int result)
{
	struct sandbox_verdict v = { SANDBOX_OFF, 0, 0 };

	if (mode == CONF_SANDBOX_OFF)
		return v;
	switch (result) {
	case SANDBOX_ON:
	case SANDBOX_ON_THREAD:
	case SANDBOX_NO_BUILD:
		v.state = result;
		return v;
	default:
		v.state = SANDBOX_FAILED;
		v.exit = mode != CONF_SANDBOX_TRY;
		v.warn = !v.exit;
		return v;
	}
}
