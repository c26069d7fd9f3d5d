/*
 * sandbox: a seccomp allow-list for workers, built with libseccomp.
 *
 * A worker that has set itself up needs little: epoll, accept, read and
 * send, close, the clock, memory for pending buffers, its log line, and
 * exit.  Anything else (opening files, exec, new sockets, ptrace, ...) is
 * a compromised or broken worker: the kernel kills it, the master logs
 * "killed by signal 31" and replaces it, the rest of the pool serves on.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif

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
	/* syslog() after -d: it may reconnect to /dev/log */
	SCMP_SYS(socket), SCMP_SYS(connect),
	/* stdio's first use of a stream */
	SCMP_SYS(fstat), SCMP_SYS(newfstatat),
};

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

int
sandbox_enter(char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	size_t i;
	int rc = 0;

#ifdef SANITIZED
	snprintf(err, errlen, "not in a sanitizer build");
	return 1;
#endif
	/* The time zone is read now, not from inside the sandbox. */
	tzset();
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp: %s", strerror(-rc));
		return -1;
	}
	return 0;
}
