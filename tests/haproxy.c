/*
 * haproxy: a real HAProxy in front of echod instances (see haproxy.h).
 * It only starts, asks and stops HAProxy; what the tests expect of it is
 * in check_haproxy.c.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "haproxy.h"

#define START_TRIES 5

void
hap_conf_init(struct hap_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->send_proxy = 1;
	c->inter_ms = 500;
	c->fall = 2;
	c->rise = 2;
	c->retries = 3;
	c->redispatch = 1;
	c->nbthread = 1;
}

/* snprintf at buf + *n; -1 once it no longer fits. */
static int
cat(char *buf, size_t len, int *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
cat(char *buf, size_t len, int *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (*n < 0 || (size_t)*n >= len)
		return *n = -1;
	va_start(ap, fmt);
	k = vsnprintf(buf + *n, len - (size_t)*n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= len - (size_t)*n)
		return *n = -1;
	return *n += k;
}

static int
conf_valid(const struct hap_conf *c)
{
	int i;

	if (c->port <= 0 || c->port > 65535 || c->nservers < 1 ||
	    c->nservers > HAP_MAX_SERVERS || c->inter_ms <= 0 ||
	    c->fall <= 0 || c->rise <= 0 || c->retries < 0 ||
	    c->nbthread <= 0 || c->sock_path == NULL)
		return 0;
	for (i = 0; i < c->nservers; i++)
		if (c->server_port[i] <= 0 || c->server_port[i] > 65535)
			return 0;
	return 1;
}

int
hap_config(const struct hap_conf *c, char *buf, size_t len)
{
	int n = 0, i;

	if (!conf_valid(c))
		return -1;
	cat(buf, len, &n, "# written by the haproxy test harness\n"
	    "global\n"
	    "    stats socket %s mode 600 level admin\n"
	    "    nbthread %d\n"
	    "    hard-stop-after 5s\n"
	    "    log stderr format raw local0 info\n"
	    "defaults\n"
	    "    mode tcp\n"
	    "    log global\n"
	    "    option tcplog\n"
	    "    timeout connect 2s\n"
	    "    timeout client 60s\n"
	    "    timeout server 60s\n"
	    "    retries %d\n"
	    "%s"
	    "frontend fe\n"
	    "    bind 127.0.0.1:%d\n"
	    "    default_backend be\n"
	    "backend be\n"
	    "    balance leastconn\n"
	    "    option tcp-check\n"
	    "    tcp-check send hello\\n\n"
	    "    tcp-check expect string HELLO\n"
	    "    default-server inter %d fall %d rise %d%s\n",
	    c->sock_path, c->nbthread, c->retries,
	    c->redispatch ? "    option redispatch 1\n" : "", c->port,
	    c->inter_ms, c->fall, c->rise,
	    c->send_proxy ? " send-proxy-v2 check-send-proxy" : "");
	for (i = 0; i < c->nservers; i++)
		cat(buf, len, &n, "    server e%d 127.0.0.1:%d check\n", i + 1,
		    c->server_port[i]);
	return n;
}

/* ---- "show stat" ---- */

/* The idx-th comma-separated field of line (up to its end), into out. */
static int
csv_field(const char *line, int idx, char *out, size_t outlen)
{
	const char *e;
	int i;

	for (i = 0; i < idx; i++) {
		line += strcspn(line, ",\n");
		if (*line != ',')
			return -1;
		line++;
	}
	e = line + strcspn(line, ",\n");
	snprintf(out, outlen, "%.*s", (int)(e - line), line);
	return 0;
}

/* Which column of the header line ("# pxname,svname,...") is name. */
static int
csv_column(const char *hdr, const char *name)
{
	char f[64];
	int i;

	for (i = 0; i < 512 && csv_field(hdr, i, f, sizeof(f)) == 0; i++)
		if (strcmp(i == 0 && strncmp(f, "# ", 2) == 0 ? f + 2 : f,
		    name) == 0)
			return i;
	return -1;
}

int
hap_stat_field(const char *csv, const char *px, const char *sv,
    const char *field, char *out, size_t outlen)
{
	const char *line;
	char a[128], b[128];
	int col;

	if (strncmp(csv, "# ", 2) != 0 || (col = csv_column(csv, field)) < 0)
		return -1;
	for (line = strchr(csv, '\n'); line != NULL && line[1] != '\0';
	    line = strchr(line + 1, '\n')) {
		if (csv_field(line + 1, 0, a, sizeof(a)) == 0 &&
		    csv_field(line + 1, 1, b, sizeof(b)) == 0 &&
		    strcmp(a, px) == 0 && strcmp(b, sv) == 0)
			return csv_field(line + 1, col, out, outlen);
	}
	return -1;
}

enum hap_state
hap_state_of(const char *status)
{
	if (strncmp(status, "UP", 2) == 0 &&
	    (status[2] == '\0' || status[2] == ' '))
		return HAP_UP;
	if (strncmp(status, "DOWN", 4) == 0 &&
	    (status[4] == '\0' || status[4] == ' '))
		return HAP_DOWN;
	if (strncmp(status, "MAINT", 5) == 0)
		return HAP_MAINT;
	return HAP_UNKNOWN;
}

/* ---- the process ---- */

/* Is name an executable in one of PATH's directories? */
static int
in_path(const char *name)
{
	const char *p = getenv("PATH"), *e;
	char path[512];

	for (; p != NULL && *p != '\0'; p = *e ? e + 1 : e) {
		e = p + strcspn(p, ":");
		snprintf(path, sizeof(path), "%.*s/%s", (int)(e - p), p, name);
		if (e > p && access(path, X_OK) == 0)
			return 1;
	}
	return 0;
}

const char *
hap_bin(void)
{
	const char *b = getenv("HAPROXY_BIN");

	if (b != NULL && *b)
		return b;
	/* Debian installs it in /usr/sbin, which a user's PATH may lack. */
	if (!in_path("haproxy") && access("/usr/sbin/haproxy", X_OK) == 0)
		return "/usr/sbin/haproxy";
	return "haproxy";
}

int
hap_have(char *ver, size_t verlen)
{
	const char *argv[] = { hap_bin(), "-v", NULL };
	char out[1024];
	int st = h_run(argv, out, sizeof(out), 5000);

	if (ver != NULL)
		snprintf(ver, verlen, "%.*s", (int)strcspn(out, "\n"), out);
	return cl_exited_with(st, 0) && strstr(out, "HAProxy") != NULL;
}

void
hap_init(struct hap_proc *h)
{
	memset(h, 0, sizeof(*h));
	h->pid = -1;
}

static int
make_dir(struct hap_proc *h)
{
	snprintf(h->dir, sizeof(h->dir), "/tmp/echod-hap.XXXXXX");
	if (mkdtemp(h->dir) == NULL) {
		h->dir[0] = '\0';
		return -1;
	}
	snprintf(h->cfg_path, sizeof(h->cfg_path), "%s/haproxy.cfg", h->dir);
	snprintf(h->log_path, sizeof(h->log_path), "%s/haproxy.log", h->dir);
	snprintf(h->sock_path, sizeof(h->sock_path), "%s/stats.sock", h->dir);
	return 0;
}

/* The start of HAProxy's log (its stderr) into buf, NUL-terminated. */
static void
log_read(const struct hap_proc *h, char *buf, size_t len)
{
	size_t n = 0;
	FILE *f;

	if ((f = fopen(h->log_path, "re")) != NULL) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

static pid_t
spawn(const struct hap_proc *h)
{
	const char *argv[] = { hap_bin(), "-f", h->cfg_path, "-db", NULL };
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	unsetenv("NOTIFY_SOCKET");
	h_child_stdio(h->log_path);
	execvp(argv[0], (char *const *)(uintptr_t)argv);
	_exit(127);
}

static int
reap(struct hap_proc *h, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int st;
	pid_t r;

	do {
		r = waitpid(h->pid, &st, WNOHANG);
		if (r == h->pid || (r == -1 && errno == ECHILD)) {
			h->pid = -1;
			return r == -1 ? -1 : st;
		}
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

/* Ready: the stats socket answers "show info" and the frontend accepts. */
static int
wait_ready(struct hap_proc *h, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	char out[4096];
	int fd;

	do {
		if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
			h->pid = -1;
			return -1; /* it exited: a bad file, or the port taken */
		}
		if (hap_cmd(h, "show info", out, sizeof(out), 1000) > 0 &&
		    strstr(out, "Pid:") != NULL &&
		    (fd = h_connect(h->port, 0)) != -1) {
			close(fd);
			return 0;
		}
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

/* One try on a port free a moment ago. */
static int
start_once(struct hap_proc *h, struct hap_conf *c, int timeout_ms)
{
	static char cfg[8192];

	if ((c->port = cl_free_port()) <= 0)
		return -1;
	h->port = c->port;
	c->sock_path = h->sock_path;
	if (hap_config(c, cfg, sizeof(cfg)) < 0 ||
	    cl_write_file(h->cfg_path, "%s", cfg) == -1 ||
	    (h->pid = spawn(h)) == -1)
		return -1;
	if (wait_ready(h, timeout_ms) == 0)
		return 0;
	hap_stop(h, 2000);
	return -1;
}

int
hap_start(struct hap_proc *h, struct hap_conf *c, int timeout_ms,
    char *err, size_t errlen)
{
	char log[1024];
	int try;

	hap_init(h);
	if (make_dir(h) == -1) {
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	for (try = 0; try < START_TRIES; try++)
		if (start_once(h, c, timeout_ms) == 0)
			return 0;
	log_read(h, log, sizeof(log));
	snprintf(err, errlen, "haproxy did not start in %d tries (%s); its "
	    "log says: %s", START_TRIES, h->cfg_path, log);
	return -1;
}

int
hap_cmd(const struct hap_proc *h, const char *cmd, char *out, size_t outlen,
    int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct sockaddr_un sun;
	struct pollfd pfd;
	size_t n = 0;
	ssize_t r;
	int fd, left;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", h->sock_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    h_write_all(fd, cmd, strlen(cmd)) == -1 ||
	    h_write_all(fd, "\n", 1) == -1) {
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	/* Not in interactive mode, it answers and closes. */
	while (n + 1 < outlen && (left = (int)(deadline - h_now_ms())) > 0) {
		if (poll(&pfd, 1, left) <= 0)
			continue;
		r = recv(fd, out + n, outlen - n - 1, MSG_DONTWAIT);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	out[n] = '\0';
	return (int)n;
}

int
hap_server_field(const struct hap_proc *h, const char *sv, const char *field,
    char *out, size_t outlen)
{
	static char csv[65536];

	if (hap_cmd(h, "show stat", csv, sizeof(csv), 2000) <= 0)
		return -1;
	return hap_stat_field(csv, "be", sv, field, out, outlen);
}

enum hap_state
hap_server_state(const struct hap_proc *h, const char *sv)
{
	char status[64];

	if (hap_server_field(h, sv, "status", status, sizeof(status)) == -1)
		return HAP_UNKNOWN;
	return hap_state_of(status);
}

long long
hap_wait_state(const struct hap_proc *h, const char *sv, enum hap_state want,
    int timeout_ms)
{
	long long t0 = h_now_ms(), deadline = t0 + timeout_ms;
	char chk[64];

	do {
		if (hap_server_state(h, sv) == want && (want != HAP_UP ||
		    (hap_server_field(h, sv, "check_status", chk,
		    sizeof(chk)) == 0 && strcmp(chk, "L7OK") == 0)))
			return h_now_ms() - t0;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return -1;
}

int
hap_stop(struct hap_proc *h, int timeout_ms)
{
	static const int sigs[] = { SIGUSR1, SIGTERM, SIGKILL };
	int i, st;

	for (i = 0; i < 3 && h->pid > 0; i++) {
		kill(h->pid, sigs[i]);
		if ((st = reap(h, i == 2 ? 5000 : timeout_ms)) != -1)
			return st;
	}
	return -1;
}

void
hap_cleanup(struct hap_proc *h)
{
	char cmd[160];

	if (h->pid > 0) {
		kill(h->pid, SIGKILL);
		reap(h, 5000);
	}
	if (h->dir[0] != '\0') {
		unlink(h->cfg_path);
		unlink(h->log_path);
		unlink(h->sock_path);
		if (rmdir(h->dir) == -1) {
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
			if (system(cmd) != 0)
				fprintf(stderr, "cannot remove %s\n", h->dir);
		}
		h->dir[0] = '\0';
	}
}
