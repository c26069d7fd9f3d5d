/*
 * harness: start the real echod for integration tests (see harness.h).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "procfs.h"

#define MAX_ARGS 32

long long
h_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long
h_now_ms(void)
{
	return h_now_us() / 1000;
}

void
h_poll_pause(void)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

const char *
h_echod_bin(void)
{
	const char *b = getenv("ECHOD_BIN");

	return b != NULL && *b ? b : "build/echod";
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int
open_notify(struct echod_proc *p)
{
	struct sockaddr_un sun;

	snprintf(p->notify_path, sizeof(p->notify_path), "%s/notify", p->dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->notify_path);
	p->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (p->notify_fd == -1)
		return -1;
	return bind(p->notify_fd, (struct sockaddr *)&sun, sizeof(sun));
}

/* Move fds to 3, 4, ... (they may already sit in that range). */
static void
pass_fds(const int *fds, int nfds)
{
	int tmp[16], i;

	for (i = 0; i < nfds && i < 16; i++)
		tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
	for (i = 0; i < nfds && i < 16; i++) {
		dup2(tmp[i], 3 + i); /* dup2 clears close-on-exec */
		close(tmp[i]);
	}
}

static void
set_envs(const char *const *envs)
{
	char name[64], pid[16];
	const char *eq;

	for (; envs != NULL && *envs != NULL; envs++) {
		if ((eq = strchr(*envs, '=')) == NULL ||
		    (size_t)(eq - *envs) >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(eq - *envs), *envs);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv(name, strcmp(eq + 1, "self") == 0 ? pid : eq + 1, 1);
	}
}

void
h_child_stdio(const char *log_path)
{
	int fd;

	if ((fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644)) != -1) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if ((fd = open("/dev/null", O_RDONLY)) != -1) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
}

static void
exec_echod(struct echod_proc *p, const char *conf_text,
    const char *const *args, const char *const *envs, const int *fds,
    int nfds)
{
	const char *argv[MAX_ARGS + 4];
	int i = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setenv("NOTIFY_SOCKET", p->notify_path, 1);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	unsetenv("JOURNAL_STREAM");
	set_envs(envs);
	pass_fds(fds, nfds);
	h_child_stdio(p->log_path);
	argv[i++] = h_echod_bin();
	if (conf_text != NULL) {
		argv[i++] = "-c";
		argv[i++] = p->conf_path;
	}
	while (args != NULL && *args != NULL && i < MAX_ARGS + 2)
		argv[i++] = *args++;
	argv[i] = NULL;
	execv(argv[0], (char *const *)(uintptr_t)argv);
	_exit(127);
}

int
h_spawn(struct echod_proc *p, const char *conf_text,
    const char *const *args)
{
	return h_spawn_ex(p, conf_text, args, NULL, NULL, 0);
}

int
h_spawn_ex(struct echod_proc *p, const char *conf_text,
    const char *const *args, const char *const *envs, const int *fds,
    int nfds)
{
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->notify_fd = -1;
	snprintf(p->dir, sizeof(p->dir), "/tmp/echod-test.XXXXXX");
	if (mkdtemp(p->dir) == NULL)
		return -1;
	snprintf(p->conf_path, sizeof(p->conf_path), "%s/echod.conf", p->dir);
	snprintf(p->log_path, sizeof(p->log_path), "%s/echod.log", p->dir);
	/*
	 * Started as root, echod runs as "nobody" after binding: it must
	 * still reach its notify socket and re-read its file on SIGHUP.
	 */
	if (chmod(p->dir, 0755) == -1 ||
	    (conf_text != NULL && write_file(p->conf_path, conf_text) == -1) ||
	    open_notify(p) == -1 || chmod(p->notify_path, 0666) == -1)
		return -1;
	if ((p->pid = fork()) == -1)
		return -1;
	if (p->pid == 0)
		exec_echod(p, conf_text, args, envs, fds, nfds);
	return 0;
}

static void
queue_msg(struct echod_proc *p, const char *msg)
{
	if (p->nqueued == 32) {
		memmove(p->queued[0], p->queued[1], sizeof(p->queued[0]) * 31);
		p->nqueued--;
	}
	snprintf(p->queued[p->nqueued++], sizeof(p->queued[0]), "%.511s", msg);
}

void
h_drain_notify(struct echod_proc *p)
{
	char buf[4096];
	ssize_t n;

	if (p->notify_fd == -1)
		return;
	while ((n = recv(p->notify_fd, buf, sizeof(buf) - 1,
	    MSG_DONTWAIT)) > 0) {
		buf[n] = '\0';
		queue_msg(p, buf);
	}
}

/* The first queued message matching needle, dropping those before it. */
static int
take_queued(struct echod_proc *p, const char *needle, char *out,
    size_t outlen)
{
	int i;

	for (i = 0; i < p->nqueued; i++)
		if (needle == NULL || strstr(p->queued[i], needle) != NULL)
			break;
	if (i == p->nqueued) {
		p->nqueued = 0;
		return -1;
	}
	if (out != NULL)
		snprintf(out, outlen, "%s", p->queued[i]);
	memmove(p->queued[0], p->queued[i + 1],
	    sizeof(p->queued[0]) * (size_t)(p->nqueued - i - 1));
	p->nqueued -= i + 1;
	return 0;
}

int
h_wait_notify(struct echod_proc *p, const char *needle, int timeout_ms,
    char *out, size_t outlen)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = p->notify_fd, .events = POLLIN };

	do {
		h_drain_notify(p);
		if (take_queued(p, needle, out, outlen) == 0)
			return 0;
		/* A daemon that died will never send it. */
		if (poll(&pfd, 1, 50) <= 0 && !h_alive(p->pid))
			return -1;
	} while (h_now_ms() < deadline);
	return -1;
}

static int
parse_port(const char *ready)
{
	const char *s = strstr(ready, "listening on ");
	const char *colon;

	if (s == NULL)
		return -1;
	s += strlen("listening on ");
	if (*s == '[') {
		if ((s = strchr(s, ']')) == NULL)
			return -1;
		colon = s + 1;
	} else
		colon = strchr(s, ':');
	return colon != NULL && *colon == ':' ? atoi(colon + 1) : -1;
}

int
h_start(struct echod_proc *p, const char *conf_text,
    const char *const *args, int timeout_ms)
{
	if (h_spawn(p, conf_text, args) == -1)
		return -1;
	if (h_wait_notify(p, "READY=1", timeout_ms, p->ready,
	    sizeof(p->ready)) == -1)
		return -1;
	p->port = parse_port(p->ready);
	return p->port > 0 ? 0 : -1;
}

int
h_wait_exit(struct echod_proc *p, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int st;
	pid_t r;

	if (p->pid <= 0)
		return -1;
	do {
		h_drain_notify(p);
		r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid) {
			p->pid = -1;
			return st;
		}
		if (r == -1 && errno != EINTR)
			return -1;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

int
h_stop(struct echod_proc *p, int timeout_ms)
{
	int st;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	if ((st = h_wait_exit(p, timeout_ms)) != -1)
		return st;
	kill(p->pid, SIGKILL);
	h_wait_exit(p, 5000);
	return -1;
}

void
h_cleanup(struct echod_proc *p)
{
	char cmd[160];

	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		h_wait_exit(p, 5000);
	}
	if (p->notify_fd != -1)
		close(p->notify_fd);
	p->notify_fd = -1;
	if (p->dir[0] != '\0') {
		unlink(p->conf_path);
		unlink(p->log_path);
		unlink(p->notify_path);
		if (rmdir(p->dir) == -1) {
			/* A test left more files in it: remove them too. */
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
			if (system(cmd) != 0)
				fprintf(stderr, "cannot remove %s\n", p->dir);
		}
		p->dir[0] = '\0';
	}
}

/* ---- processes ---- */

/*
 * The signal pid's parent gets when it ends (field 38 of /proc/PID/stat),
 * or -1.  A forked process has SIGCHLD; 0 is a clone() that shares its
 * parent's memory, such as the tracer LeakSanitizer starts inside an ASan
 * build of echod at exit: not a worker, and killing it hangs that exit.
 */
static int
proc_exit_signal(pid_t pid)
{
	char buf[512], *p;
	int field;

	if (pf_read_pid(pid, "stat", buf, sizeof(buf)) == -1 ||
	    (p = strrchr(buf, ')')) == NULL)
		return -1;
	for (field = 3; field <= 38 && p != NULL; field++)
		p = strchr(p + 1, ' '); /* the space before the field */
	return p != NULL ? atoi(p + 1) : -1;
}

int
h_alive(pid_t pid)
{
	int st = pid > 0 ? pf_state(pid) : 0;

	return st != 0 && st != 'Z' && st != 'X';
}

int
h_children(pid_t master, pid_t *pids, int max)
{
	struct dirent *de;
	DIR *d;
	struct pf_stat st;
	pid_t pid;
	int n = 0;

	if ((d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		if ((pid = atoi(de->d_name)) <= 0)
			continue;
		if (pf_stat(pid, &st) == 0 && st.ppid == master &&
		    st.state != 'Z' && st.state != 'X' &&
		    proc_exit_signal(pid) != 0)
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

pid_t
h_worker_pid(pid_t master, unsigned slot)
{
	pid_t pids[512];
	char title[128], want[64];
	int i, n;

	n = h_children(master, pids, 512);
	snprintf(want, sizeof(want), "echod: worker %u", slot);
	for (i = 0; i < n; i++) {
		if (pf_read_pid(pids[i], "cmdline", title, sizeof(title)) > 0 &&
		    strcmp(title, want) == 0)
			return pids[i];
	}
	return -1;
}

pid_t
h_wait_worker(pid_t master, unsigned slot, pid_t old, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	pid_t pid;

	do {
		pid = h_worker_pid(master, slot);
		if (pid > 0 && pid != old)
			return pid;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

/* ---- the log ---- */

size_t
h_log_read(struct echod_proc *p, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;
	int fd;

	buf[0] = '\0';
	if ((fd = open(p->log_path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	while (n + 1 < len && (r = read(fd, buf + n, len - n - 1)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	return n;
}

int
h_log_wait(struct echod_proc *p, const char *needle, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	static char buf[1 << 20];

	do {
		h_drain_notify(p);
		h_log_read(p, buf, sizeof(buf));
		if (strstr(buf, needle) != NULL)
			return 1;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return 0;
}

/* ---- TCP ---- */

int
h_connect(int port, int v6)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct timeval tv = { 10, 0 };
	socklen_t sl;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons((uint16_t)port);
		sl = sizeof(*sin);
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, sl) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
h_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t w;

	while (len > 0) {
		w = send(fd, p, len, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

size_t
h_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;
	long long left;

	while (got < len && (left = deadline - h_now_ms()) > 0) {
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

int
h_expect_eof(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

/* ---- running commands ---- */

int
h_run(const char *const *argv, char *out, size_t outlen, int timeout_ms)
{
	const char *av[MAX_ARGS + 1];
	long long deadline = h_now_ms() + timeout_ms;
	struct pollfd pfd;
	size_t n = 0;
	ssize_t r;
	int p[2], st, i, fd;
	pid_t pid;

	for (i = 0; argv[i] != NULL; i++) {
		if (i == MAX_ARGS)
			return -1; /* never run a truncated command line */
		av[i] = i == 0 && strcmp(argv[0], "echod") == 0 ?
		    h_echod_bin() : argv[i];
	}
	av[i] = NULL;
	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		if ((fd = open("/dev/null", O_RDONLY)) != -1)
			dup2(fd, STDIN_FILENO);
		unsetenv("NOTIFY_SOCKET");
		execvp(av[0], (char *const *)(uintptr_t)av);
		_exit(127);
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	while (h_now_ms() < deadline) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		r = read(p[0], out + n, n + 1 < outlen ? outlen - n - 1 : 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n < outlen ? n : outlen - 1] = '\0';
	close(p[0]);
	while (h_now_ms() < deadline) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		h_poll_pause();
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/*
 * The second half of h_start, for a daemon started some other way (a
 * wrapper, -d): wait for READY=1 and read the port from it.
 */
int
h_wait_ready(struct echod_proc *p, int timeout_ms)
{
	if (h_wait_notify(p, "READY=1", timeout_ms, p->ready,
	    sizeof(p->ready)) == -1)
		return -1;
	p->port = parse_port(p->ready);
	return p->port > 0 ? 0 : -1;
}

/* ---- suites ---- */

TCase *
h_case_fixed(Suite *s, const char *name, double timeout_s,
    void (*setup)(void), void (*teardown)(void), const TTest *const *tests)
{
	TCase *tc = tcase_create(name);

	if (setup != NULL || teardown != NULL)
		tcase_add_checked_fixture(tc, setup, teardown);
	if (timeout_s > 0)
		tcase_set_timeout(tc, timeout_s);
	for (; tests != NULL && *tests != NULL; tests++)
		tcase_add_test(tc, *tests);
	suite_add_tcase(s, tc);
	return tc;
}

TCase *
h_case(Suite *s, const char *name, double timeout_s,
    const TTest *const *tests)
{
	return h_case_fixed(s, name, timeout_s, NULL, NULL, tests);
}

/* ---- server models (issue 11) ---- */

const char *const h_models[H_NMODELS] = {
	"events", "prefork", "process-per-connection",
	"thread-per-connection", "thread-pool",
};

const char *
h_conf_model(char *buf, size_t len, const char *conf_text, const char *model,
    int threads)
{
	int n;

	if (model == NULL || strcmp(model, "events") == 0)
		n = snprintf(buf, len, "%s", conf_text);
	else if (strcmp(model, "thread-pool") == 0 && threads > 0)
		n = snprintf(buf, len, "%smodel = %s\nthreads = %d\n",
		    conf_text, model, threads);
	else
		n = snprintf(buf, len, "%smodel = %s\n", conf_text, model);
	return n >= 0 && (size_t)n < len ? buf : NULL;
}

int
h_model_workers(const char *model, int workers, int conns)
{
	return model != NULL && strcmp(model, "prefork") == 0 ?
	    workers * conns : workers;
}

int
h_model_multiplexes(const char *model)
{
	return model == NULL || (strcmp(model, "prefork") != 0 &&
	    strcmp(model, "process-per-connection") != 0);
}

/* Append the children of pid's threads (their "children" files) to pids. */
static int
add_children(pid_t pid, pid_t *pids, int n, int max)
{
	char path[64], buf[4096], *p, *end;
	struct pf_stat st;
	struct dirent *de;
	long c, tid;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return n;
	while ((de = readdir(d)) != NULL && n < max) {
		if ((tid = atol(de->d_name)) <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%ld/children",
		    (int)pid, tid);
		if (pf_read(path, buf, sizeof(buf)) <= 0)
			continue;
		for (p = buf; n < max; p = end) {
			c = strtol(p, &end, 10);
			if (end == p)
				break;
			/* Not one that has ended and waits to be reaped. */
			if (c > 0 && pf_stat((pid_t)c, &st) == 0 &&
			    st.state != 'Z' && st.state != 'X')
				pids[n++] = (pid_t)c;
		}
	}
	closedir(d);
	return n;
}

int
h_descendants(pid_t root, pid_t *pids, int max)
{
	int n, head;

	/*
	 * Breadth first, through the kernel's per-thread "children" lists,
	 * not a scan of all /proc: a busy machine may run thousands of
	 * processes.  Threads are not children, so they are not listed.
	 */
	n = add_children(root, pids, 0, max);
	for (head = 0; head < n; head++)
		n = add_children(pids[head], pids, n, max);
	return n;
}
