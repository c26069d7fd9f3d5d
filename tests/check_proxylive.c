/*
 * check_proxylive: the PROXY protocol (issue 12) against a running echod.
 *
 * The header parser has its own table (check_proxy.c); this is the
 * daemon.  A proxied listener reads a header before anything else, from
 * a peer in proxy_trusted only, within proxy_timeout (counted from the
 * accept), and then takes the header's source for the client: in log
 * lines ("203.0.113.9:40112 via 127.0.0.1:51000"), in the per-IP limits
 * and on the scoreboard.  Whatever fails is closed without a byte back
 * and logged, one line a second per worker with a counter.
 *
 * The balancer is the test itself: it connects from 127.0.0.1 (or
 * another 127.0.0.0/8 address) and writes the header (clients.h:
 * cl_proxy_v1, cl_proxy_v2, cl_send_chunks).
 *
 * What every server model must do alike is in six scenarios that take
 * the model as a parameter (scenarios.h: headers, guard, per_ip, burst,
 * flood, scoreboard); check_modelrun.c runs them under all five, and
 * they are not run here a second time, so that make check stays short.
 * This suite has what does not depend on the model: the header builders
 * (pure, through the daemon's own parser), each bad input's reason in
 * the log, a plain listener beside a proxied one, a reload that moves
 * addresses between the lists, limits_exempt_loopback, proxy_trusted's
 * blocks and an IPv6 proxied listener.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clients.h"
#include "harness.h"
#include "procfs.h"
#include "proxy.h"
#include "scenarios.h"
#include "suites.h"

#define START_MS 15000
#define REPLY_MS 3000
/*
 * A bad header is closed at once; the daemons that see them wait
 * proxy_timeout = 30 s, so a close within CLOSE_MS is not the timeout.
 */
#define CLOSE_MS 3000
#define LO "127.0.0.1"
#define LO2 "127.0.0.2"
#define REAL "203.0.113.9" /* the clients the headers name */
#define REAL_B "203.0.113.10"
#define REAL6 "2001:db8::9"
#define RPORT 40112
#define PXCONF_MAX 640
#define HDR_MAX (PROXY_V2_MAX + 16) /* the longest header, and some */

/* ---- what the balancer sends ---- */

/* The valid headers, each as the daemon must see it. */
struct hspec {
	const char *name;
	int v2;
	const char *proto;     /* v1: TCP4, TCP6, UNKNOWN */
	const char *src, *dst; /* NULL: LOCAL, UNKNOWN */
	int tlvs;              /* v2: 1, ALPN and NOOP TLVs behind the
				  addresses; 2, a NOOP TLV that makes the
				  header PROXY_V2_MAX bytes, the longest */
};

static const struct hspec hspecs[] = {
	{ "v1 TCP4", 0, "TCP4", REAL, "127.0.0.1", 0 },
	{ "v1 TCP6", 0, "TCP6", REAL6, "2001:db8::1", 0 },
	{ "v1 UNKNOWN", 0, "UNKNOWN", NULL, NULL, 0 },
	{ "v2 PROXY TCP4 with TLVs", 1, NULL, REAL, "127.0.0.1", 1 },
	{ "v2 PROXY TCP6", 1, NULL, REAL6, "2001:db8::1", 0 },
	{ "v2 LOCAL", 1, NULL, NULL, NULL, 0 },
	{ "v2 PROXY TCP4, the longest header", 1, NULL, REAL, "127.0.0.1", 2 },
};
#define HS_V1_TCP4 0
#define HS_V1_TCP6 1
#define HS_V1_UNKNOWN 2
#define HS_V2_TCP4 3
#define HS_V2_TCP6 4
#define HS_V2_LOCAL 5
#define HS_V2_LONGEST 6

/* hs's header from sport to dport into buf; its length, 0 if none. */
static size_t
hs_build(const struct hspec *hs, int sport, int dport, unsigned char *buf,
    size_t len)
{
	static const unsigned char zeros[PROXY_V2_MAX];
	unsigned char tlv[PROXY_V2_MAX];
	size_t tl = 0;

	if (!hs->v2)
		return cl_proxy_v1((char *)buf, len, hs->proto, hs->src, sport,
		    hs->dst, dport);
	if (hs->tlvs == 1) { /* PP2_TYPE_ALPN "h2", then a PP2_TYPE_NOOP */
		tl = cl_proxy_tlv(tlv, sizeof(tlv), 0x01, "h2", 2);
		tl += cl_proxy_tlv(tlv + tl, sizeof(tlv) - tl, 0x04, NULL, 0);
	}
	if (hs->tlvs == 2) /* the fixed part, two IPv4 addresses and ports */
		tl = cl_proxy_tlv(tlv, sizeof(tlv), 0x04, zeros,
		    PROXY_V2_MAX - 16 - 12 - 3);
	return cl_proxy_v2(buf, len, hs->src, sport, hs->dst, dport, tlv, tl);
}

/*
 * How the daemon names the client of hs from sport into buf: the
 * header's source, or NULL when it keeps the balancer (LOCAL, UNKNOWN).
 */
static const char *
hs_shown(const struct hspec *hs, int sport, char *buf, size_t len)
{
	if (hs->src == NULL)
		return NULL;
	snprintf(buf, len, strchr(hs->src, ':') ? "[%s]:%d" : "%s:%d",
	    hs->src, sport);
	return buf;
}

/*
 * The bad inputs: what the daemon must close without a byte back, and
 * the reason its PROXY line gives.  text, or a valid v2 header (TCP4)
 * with byte at (and at + 1 when two) changed, or a v1 line without CRLF
 * past 107 bytes; then the client half-closes (EARLY_FIN) or resets
 * (EARLY_RST) the connection, or waits (0).
 */
#define EARLY_FIN 1
#define EARLY_RST 2
struct bspec {
	const char *name;
	const char *text;
	int at, two;
	unsigned char b0, b1;
	int long_v1, early;
	const char *why;
};

static const struct bspec bspecs[] = {
	{ "no header", "hello\n", 0, 0, 0, 0, 0, 0,
	    "bad header: not a PROXY header" },
	{ "v1 bad address", "PROXY TCP4 192.0.2.256 192.0.2.2 40112 7008\r\n",
	    0, 0, 0, 0, 0, 0, "bad header: bad address" },
	{ "v1 missing port", "PROXY TCP4 192.0.2.1 192.0.2.2 40112\r\n", 0, 0,
	    0, 0, 0, 0, "bad header: malformed v1 line" },
	{ "v1 without CRLF past 107 bytes", NULL, 0, 0, 0, 0, 1, 0,
	    "bad header: v1 line longer than 107 bytes" },
	{ "v2 version 1", NULL, 12, 0, 0x11, 0, 0, 0,
	    "bad header: bad v2 version" },
	{ "v2 command 2", NULL, 12, 0, 0x22, 0, 0, 0,
	    "bad header: bad v2 command" },
	{ "v2 AF_UNIX", NULL, 13, 0, 0x31, 0, 0, 0,
	    "bad header: unsupported v2 family" },
	{ "v2 length 65535", NULL, 14, 1, 0xff, 0xff, 0, 0,
	    "bad header: v2 header longer than the cap" },
	{ "closed mid-header", "PROXY TCP4 192.0.2.1 19", 0, 0, 0, 0, 0,
	    EARLY_FIN, "closed before a complete header" },
	{ "reset mid-header", "PROXY TCP4 192.0.2.1 19", 0, 0, 0, 0, 0,
	    EARLY_RST, "read error: Connection reset by peer" },
};
#define NBAD H_NELEM(bspecs)

/* bs's bytes into buf; their length. */
static size_t
bs_build(const struct bspec *bs, unsigned char *buf, size_t len)
{
	size_t n;

	if (bs->text != NULL) {
		n = strlen(bs->text);
		memcpy(buf, bs->text, n < len ? n : len);
		return n < len ? n : len;
	}
	if (bs->long_v1) {
		n = (size_t)snprintf((char *)buf, len, "PROXY UNKNOWN ");
		while (n < 124 && n < len)
			buf[n++] = 'a';
		return n;
	}
	n = cl_proxy_v2(buf, len, REAL, RPORT, "192.0.2.2", 7008, NULL, 0);
	buf[bs->at] = bs->b0;
	if (bs->two)
		buf[bs->at + 1] = bs->b1;
	return n;
}

/* What a client sends after its header: every byte value, up then
 * down, again and again, len bytes. */
static void
payload(unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(i % 512 < 256 ? i % 256 :
		    255 - i % 256);
}
#define PAYLOAD_LEN 512
/* Behind a split header: more than a read of the rest of the header
 * takes at once, less than a socket's buffers hold unread. */
#define PAYLOAD_BIG (48 * 1024)

/* ---- the daemon ---- */

/*
 * Start echod under model m with one proxied listener on 127.0.0.1 and
 * no plain one, trusting trusted ("\"127.0.0.1/32\""), with `workers`
 * workers holding `conns` connections each at once (more workers for
 * prefork, threads for the pool), then extra lines.  0, or -1.
 */
static int
px_start(struct echod_proc *p, const char *m, int workers, int conns,
    const char *trusted, const char *extra)
{
	char base[PXCONF_MAX], conf[PXCONF_MAX + 64];

	snprintf(base, sizeof(base), "listen = {}\n"
	    "proxy_listen = { \"127.0.0.1:0\" }\nproxy_trusted = { %s }\n"
	    "workers = %d\nmax_connections = %d\n%s", trusted,
	    h_model_workers(m, workers, conns), conns < 4 ? 4 : conns, extra);
	if (h_conf_model(conf, sizeof(conf), base, m, conns) == NULL)
		return -1;
	return h_start(p, conf, NULL, START_MS);
}

/* Connected from src (NULL: any) to 127.0.0.1:port, our name in me. */
static int
px_connect(const char *src, int port, char *me, size_t melen)
{
	int fd = cl_connect(src, LO, port);

	if (fd != -1)
		cl_local_name(fd, me, melen);
	return fd;
}

/* How a header and the client's bytes behind it are written. */
enum px_how {
	PX_ONE_WRITE, /* header and client bytes in one write */
	PX_APART,     /* the header, a pause, the client bytes */
	PX_BYTES,     /* the header byte by byte, then the client bytes */
	PX_SPLIT,     /* half the header, a pause, the rest and PAYLOAD_BIG
			 client bytes in one write */
	PX_ONE_BIG    /* header and PAYLOAD_BIG client bytes in one write */
};

/* Write hdr and plen bytes behind it in buf as how says; 0 or -1. */
static int
px_send(int fd, const unsigned char *buf, size_t hlen, size_t plen,
    enum px_how how)
{
	size_t first = how == PX_SPLIT ? hlen / 2 : hlen;

	if (how == PX_ONE_WRITE || how == PX_ONE_BIG)
		return h_write_all(fd, buf, hlen + plen);
	if (cl_send_chunks(fd, buf, first, how == PX_BYTES ? 1 : first, 2) ==
	    -1)
		return -1;
	(void)poll(NULL, 0, 20); /* pacing: what came so far read alone */
	return h_write_all(fd, buf + first, hlen + plen - first);
}

/*
 * Send hdr and a payload on fd as how says, half-close, and expect the
 * payload back uppercased, byte-exact, then EOF: nothing else (the
 * header) came back.  1, or 0 with why in err.
 */
static int
px_echo_after(int fd, const unsigned char *hdr, size_t hlen, enum px_how how,
    char *err, size_t errlen)
{
	static unsigned char buf[HDR_MAX + PAYLOAD_BIG], want[PAYLOAD_BIG];
	static unsigned char got[PAYLOAD_BIG];
	size_t n, plen = how == PX_SPLIT || how == PX_ONE_BIG ? PAYLOAD_BIG :
	    PAYLOAD_LEN;

	memcpy(buf, hdr, hlen);
	payload(buf + hlen, plen);
	memcpy(want, buf + hlen, plen);
	cl_upper(want, plen);
	if (px_send(fd, buf, hlen, plen, how) == -1 ||
	    shutdown(fd, SHUT_WR) == -1) {
		snprintf(err, errlen, "send: %s", strerror(errno));
		return 0;
	}
	n = h_read_exact(fd, got, plen, REPLY_MS);
	if (n != plen || memcmp(got, want, n) != 0) {
		snprintf(err, errlen, "%zu of %zu bytes came back%s", n, plen,
		    n == plen ? ", not the client's uppercased" : "");
		return 0;
	}
	if (!h_expect_eof(fd, REPLY_MS)) {
		snprintf(err, errlen, "no EOF after the echo (more bytes?)");
		return 0;
	}
	return 1;
}

/*
 * Send bytes (the daemon may have closed already), half-close after
 * them (EARLY_FIN), and is the connection ended within CLOSE_MS without
 * a byte back?  With EARLY_RST the caller's close() resets it: 1, the
 * daemon's side is for its log to say.
 */
static int
px_rejected(int fd, const unsigned char *bytes, size_t len, int early)
{
	struct linger lg = { 1, 0 };

	(void)send(fd, bytes, len, MSG_NOSIGNAL);
	if (early == EARLY_RST)
		return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
		    sizeof(lg)) == 0;
	if (early == EARLY_FIN)
		(void)shutdown(fd, SHUT_WR);
	return cl_closed(fd, CLOSE_MS);
}

/* ---- the log's PROXY lines ---- */

static char logbuf[1 << 20];

/*
 * The log's "PROXY: closed" lines: how many, the sum of their "(N since
 * the last such line)" counters (a line without one counts 1), and the
 * first and last counters.
 */
struct pxlines {
	int n;
	long sum, first, last;
};

static struct pxlines
px_lines(struct echod_proc *p)
{
	struct pxlines pl = { 0, 0, 0, 0 };
	const char *s = logbuf, *e, *c;
	long k;

	h_log_read(p, logbuf, sizeof(logbuf));
	while ((s = strstr(s, "PROXY: closed ")) != NULL) {
		if ((e = strchr(s, '\n')) == NULL)
			e = s + strlen(s);
		k = 1;
		c = strstr(s, " since the last such line)");
		if (c != NULL && c < e) {
			while (c > s && c[-1] != '(')
				c--;
			k = atol(c);
		}
		pl.first = pl.n++ == 0 ? k : pl.first;
		pl.last = k;
		pl.sum += k;
		s = e;
	}
	return pl;
}

/* Wait for the line "PROXY: closed PEER: WHY". */
static int
px_log_close(struct echod_proc *p, const char *peer, const char *why,
    int timeout_ms)
{
	char needle[256];

	snprintf(needle, sizeof(needle), "PROXY: closed %s: %s", peer, why);
	return cl_log_wait(p, needle, 1, timeout_ms);
}

/* ---- the scenarios every model runs (scenarios.h) ---- */

/* A client with no header: closed, no byte back, the reason logged. */
static int
hd_no_header(struct tres *t, struct echod_proc *p)
{
	char me[64];
	int fd = -1;

	REQUIRE(t, (fd = px_connect(NULL, p->port, me, sizeof(me))) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(t, px_rejected(fd, (const unsigned char *)"hello\n", 6, 0),
	    "'hello\\n' without a header on a proxied listener was not "
	    "closed within %d ms without a byte back", CLOSE_MS);
	REQUIRE(t, px_log_close(p, me, "bad header: not a PROXY header",
	    REPLY_MS), "no line 'PROXY: closed %s: bad header: not a PROXY "
	    "header'", me);
out:
	cl_close_fds(&fd, 1);
	return !t->failed;
}

static const char *
how_name(enum px_how how)
{
	static const char *const names[] = { "client bytes in the same write",
		"client bytes apart", "byte by byte", "split, 48 KiB behind",
		"48 KiB behind in the same write" };

	return names[how];
}

/*
 * Header hs from source port sport, written as how: the client's bytes
 * echoed, the header never; the debug close line names the header's
 * source "via" the balancer, or the balancer alone for LOCAL/UNKNOWN.
 */
static int
hd_one(struct tres *t, struct echod_proc *p, const struct hspec *hs,
    int sport, enum px_how how)
{
	unsigned char hdr[HDR_MAX];
	char me[64], shown[96], want[192], line[512], err[128];
	const char *who;
	size_t hlen;
	int fd = -1;

	REQUIRE(t, (hlen = hs_build(hs, sport, p->port, hdr, sizeof(hdr))) >
	    0, "%s: no header built", hs->name);
	REQUIRE(t, (fd = px_connect(NULL, p->port, me, sizeof(me))) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(t, px_echo_after(fd, hdr, hlen, how, err, sizeof(err)),
	    "%s (%s): %s", hs->name, how_name(how), err);
	who = hs_shown(hs, sport, shown, sizeof(shown));
	snprintf(want, sizeof(want), "%s%s%s closed: ", who ? who : "",
	    who ? " via " : "", me);
	REQUIRE(t, cl_log_wait(p, want, 1, REPLY_MS) && cl_log_line(p, want,
	    line, sizeof(line)), "%s: no debug line '%s...'", hs->name, want);
	REQUIRE(t, who != NULL || strstr(line, " via ") == NULL, "%s keeps "
	    "the balancer's address, but the log says '%s'", hs->name, line);
out:
	cl_close_fds(&fd, 1);
	return !t->failed;
}

/* Every bad input closed at once, no byte back (the log is rate-limited:
 * the reasons are the reasons case's, one daemon each). */
static int
hd_bad(struct tres *t, struct echod_proc *p)
{
	unsigned char buf[HDR_MAX];
	char me[64];
	size_t n;
	int i, fd = -1;

	for (i = 0; i < NBAD; i++) {
		n = bs_build(&bspecs[i], buf, sizeof(buf));
		REQUIRE(t, (fd = px_connect(NULL, p->port, me, sizeof(me))) !=
		    -1, "connect: %s", strerror(errno));
		REQUIRE(t, px_rejected(fd, buf, n, bspecs[i].early), "%s: not "
		    "closed within %d ms without a byte back", bspecs[i].name,
		    CLOSE_MS);
		cl_close_fds(&fd, 1);
	}
out:
	cl_close_fds(&fd, 1);
	return !t->failed;
}

void
proxylive_headers(const char *m)
{
	static const struct {
		int hs;
		enum px_how how;
	} runs[] = {
		{ HS_V1_TCP4, PX_ONE_WRITE }, { HS_V1_TCP6, PX_ONE_WRITE },
		{ HS_V1_UNKNOWN, PX_ONE_WRITE }, { HS_V2_TCP4, PX_ONE_WRITE },
		{ HS_V2_TCP6, PX_ONE_WRITE }, { HS_V2_LOCAL, PX_ONE_WRITE },
		{ HS_V1_TCP4, PX_BYTES }, { HS_V2_TCP6, PX_BYTES },
		{ HS_V1_UNKNOWN, PX_APART }, { HS_V2_LOCAL, PX_APART },
		{ HS_V1_TCP4, PX_SPLIT }, { HS_V2_TCP4, PX_SPLIT },
		{ HS_V2_LONGEST, PX_SPLIT }, { HS_V2_LONGEST, PX_ONE_BIG },
		{ HS_V1_TCP6, PX_ONE_BIG },
	};
	struct echod_proc p;
	struct tres t = { 0, "" };
	int i;

	cl_proc_init(&p);
	REQUIRE(&t, px_start(&p, m, 1, 1, "\"127.0.0.1/32\"",
	    "proxy_timeout = 30\nlog_level = debug\n") == 0, "start failed");
	if (!hd_no_header(&t, &p))
		goto out;
	for (i = 0; i < H_NELEM(runs); i++)
		if (!hd_one(&t, &p, &hspecs[runs[i].hs], RPORT + i,
		    runs[i].how))
			goto out;
	if (!hd_bad(&t, &p))
		goto out;
	REQUIRE(&t, cl_log_count(&p, "PROXY: closed") >= 1, "no PROXY line");
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}

/* An untrusted peer: closed at once, whatever it sends; logged. */
static int
gd_untrusted(struct tres *t, struct echod_proc *p)
{
	unsigned char hdr[HDR_MAX + 8];
	char me[64];
	size_t n;
	int fd = -1;

	n = hs_build(&hspecs[HS_V1_TCP4], RPORT, p->port, hdr, HDR_MAX);
	memcpy(hdr + n, "hello\n", 6);
	REQUIRE(t, (fd = px_connect(LO, p->port, me, sizeof(me))) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(t, px_rejected(fd, hdr, n + 6, 0), "a valid header from %s, "
	    "not in proxy_trusted, was not closed without a byte back", LO);
	REQUIRE(t, px_log_close(p, me, "not in proxy_trusted", REPLY_MS),
	    "no line 'PROXY: closed %s: not in proxy_trusted'", me);
out:
	cl_close_fds(&fd, 1);
	return !t->failed;
}

#define SLOW_MAX_MS 3000 /* proxy_timeout 1 s, and slack for a busy host */

/* Watch fd[0..1] for their end (ms[k] set, from t0); a byte is a failure. */
static int
gd_watch(struct tres *t, const int *fd, long long t0, long long *ms)
{
	struct pollfd pfd[2];
	ssize_t n;
	char b;
	int k;

	for (k = 0; k < 2; k++) {
		pfd[k].fd = ms[k] < 0 ? fd[k] : -1;
		pfd[k].events = POLLIN;
	}
	if (poll(pfd, 2, 20) <= 0) /* 20 ms: the dribbler's pace too */
		return 1;
	for (k = 0; k < 2; k++) {
		if (pfd[k].revents == 0)
			continue;
		n = recv(fd[k], &b, 1, MSG_DONTWAIT);
		REQUIRE(t, n <= 0, "a byte came back to a client without a "
		    "whole header");
		if (n == 0 || errno == ECONNRESET)
			ms[k] = h_now_ms() - t0;
	}
out:
	return !t->failed;
}

/*
 * Two headers too slow: one stalled (15 bytes, then nothing), one
 * dribbled (a byte every 100 ms, never whole within 4 s).  Both closed
 * after proxy_timeout (1 s) counted from the accept, not from the last
 * byte, and logged.  Measured from before connect(), so never early by
 * the daemon's clock; the times into ms[0..1].
 */
static int
gd_slow(struct tres *t, struct echod_proc *p, long long *ms)
{
	static const char v1[] = "PROXY TCP4 " REAL " 127.0.0.1 40112 "
	    "7008\r\n";
	char me[2][64], want[160], line[512];
	long long t0 = h_now_ms(), next = 0;
	int fd[2] = { -1, -1 }, k, sent = 0;

	ms[0] = ms[1] = -1;
	for (k = 0; k < 2; k++)
		REQUIRE(t, (fd[k] = px_connect(LO2, p->port, me[k],
		    sizeof(me[k]))) != -1, "connect: %s", strerror(errno));
	REQUIRE(t, h_write_all(fd[0], v1, 15) == 0, "send: %s",
	    strerror(errno));
	while ((ms[0] < 0 || ms[1] < 0) && h_now_ms() - t0 < 2 * SLOW_MAX_MS) {
		if (ms[1] < 0 && h_now_ms() - t0 >= next &&
		    sent < (int)sizeof(v1) - 3) {
			(void)send(fd[1], v1 + sent++, 1, MSG_NOSIGNAL);
			next += 100;
		}
		if (!gd_watch(t, fd, t0, ms))
			goto out;
	}
	for (k = 0; k < 2; k++)
		REQUIRE(t, ms[k] >= 900 && ms[k] <= SLOW_MAX_MS, "a %s header "
		    "closed after %lld ms (-1: not within %d ms); "
		    "proxy_timeout = 1 s, from the accept", k ? "dribbled" :
		    "stalled", ms[k], 2 * SLOW_MAX_MS);
	/* Both close at once: the second line may wait for the next second. */
	snprintf(want, sizeof(want), ": no complete header after 1 s (");
	REQUIRE(t, cl_log_wait(p, want, 1, REPLY_MS) && cl_log_line(p, want,
	    line, sizeof(line)) && (strstr(line, me[0]) || strstr(line, me[1])),
	    "no line 'PROXY: closed %s or %s: no complete header after 1 s'",
	    me[0], me[1]);
out:
	cl_close_fds(fd, 2);
	return !t->failed;
}

void
proxylive_guard(const char *m)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	unsigned char hdr[HDR_MAX];
	char me[64], err[128];
	long long ms[2] = { 0, 0 };
	size_t n;
	int fd = -1;

	cl_proc_init(&p);
	/* Two slow headers at once: prefork and the pool need two places. */
	REQUIRE(&t, px_start(&p, m, 1, 2, "\"" LO2 "/32\"",
	    "proxy_timeout = 1\nlog_level = info\n") == 0, "start failed");
	if (!gd_untrusted(&t, &p))
		goto out;
	n = hs_build(&hspecs[HS_V1_TCP4], RPORT, p.port, hdr, sizeof(hdr));
	REQUIRE(&t, (fd = px_connect(LO2, p.port, me, sizeof(me))) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(&t, px_echo_after(fd, hdr, n, PX_ONE_WRITE, err, sizeof(err)),
	    "from %s, in proxy_trusted: %s", LO2, err);
	cl_close_fds(&fd, 1);
	if (!gd_slow(&t, &p, ms))
		goto out;
	printf("proxylive: a stalled header closed after %lld ms, a dribbled "
	    "one after %lld ms (proxy_timeout = 1) under %s\n", ms[0], ms[1],
	    m ? m : "events");
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, &fd, 1);
}

/*
 * Connect, send header hs from sport and "held\n", read "HELD\n": a
 * client that stays.  Its fd, or -1 (what failed into err).
 */
static int
pi_hold(int port, const struct hspec *hs, int sport, char *err,
    size_t errlen)
{
	unsigned char buf[HDR_MAX + 8];
	size_t n = hs_build(hs, sport, port, buf, HDR_MAX);
	char got[5];
	int fd;

	memcpy(buf + n, "held\n", 5);
	if ((fd = cl_connect(NULL, LO, port)) == -1 ||
	    h_write_all(fd, buf, n + 5) == -1 ||
	    h_read_exact(fd, got, 5, REPLY_MS) != 5 ||
	    memcmp(got, "HELD\n", 5) != 0) {
		snprintf(err, errlen, "%s from port %d not served: %s",
		    hs->name, sport, fd == -1 ? strerror(errno) : "no echo");
		cl_close_fds(&fd, 1);
		return -1;
	}
	return fd;
}

/*
 * One more client from REAL (source port sport) is refused: its header
 * alone (then the refusal line names it by the header's source), or
 * with bytes behind it in the same write (none of them echoed: the
 * refusal comes before the echo).
 */
static int
pi_refused(struct tres *t, struct echod_proc *p, int sport, int with_bytes)
{
	unsigned char buf[HDR_MAX + 8];
	char me[64], want[192];
	size_t n;
	int fd = -1;

	n = hs_build(&hspecs[HS_V1_TCP4], sport, p->port, buf, HDR_MAX);
	memcpy(buf + n, "third\n", 6);
	REQUIRE(t, (fd = px_connect(NULL, p->port, me, sizeof(me))) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(t, px_rejected(fd, buf, n + (with_bytes ? 6 : 0), 0), "a "
	    "client from " REAL " over max_connections_per_ip was served "
	    "(%s)", with_bytes ? "'third\\n' behind its header in the same "
	    "write came back" : "its header alone");
	snprintf(want, sizeof(want), "refused " REAL ":%d via %s: "
	    "max_connections_per_ip reached", sport, me);
	/* Refusal lines are one a second: the first one only. */
	REQUIRE(t, with_bytes || cl_log_wait(p, want, 1, REPLY_MS), "no line "
	    "'%s'", want);
out:
	cl_close_fds(&fd, 1);
	return !t->failed;
}

/* Once one of REAL's two leaves, REAL is let in again (bounded). */
static int
pi_again(struct tres *t, struct echod_proc *p, int *held)
{
	long long deadline = h_now_ms() + 10000;
	char err[160] = "";
	int tries, fd = -1;

	REQUIRE(t, cl_finish(*held, REPLY_MS), "no EOF after half-close");
	cl_close_fds(held, 1);
	for (tries = 0; fd == -1 && tries < 100 && h_now_ms() < deadline;
	    tries++)
		if ((fd = pi_hold(p->port, &hspecs[HS_V2_TCP4], RPORT + 9,
		    err, sizeof(err))) == -1)
			(void)poll(NULL, 0, 50);
	REQUIRE(t, fd != -1, REAL " not let in again once one of its two "
	    "connections left: %s", err);
out:
	cl_close_fds(&fd, 1);
	return !t->failed;
}

void
proxylive_per_ip(const char *m)
{
	/* Who holds a connection: REAL twice, REAL_B, three LOCAL/UNKNOWN. */
	static const struct hspec real_b = { "v1 TCP4 from " REAL_B, 0,
		"TCP4", REAL_B, "127.0.0.1", 0 };
	const struct hspec *who[6] = { &hspecs[HS_V1_TCP4],
		&hspecs[HS_V2_TCP4], &real_b, &hspecs[HS_V2_LOCAL],
		&hspecs[HS_V1_UNKNOWN], &hspecs[HS_V2_LOCAL] };
	struct echod_proc p;
	struct tres t = { 0, "" };
	char err[160];
	int fd[6] = { -1, -1, -1, -1, -1, -1 }, i;

	cl_proc_init(&p);
	REQUIRE(&t, px_start(&p, m, 1, 8, "\"127.0.0.1/32\"",
	    "max_connections_per_ip = 2\nproxy_timeout = 30\n"
	    "log_level = info\n") == 0, "start failed");
	for (i = 0; i < 2; i++)
		REQUIRE(&t, (fd[i] = pi_hold(p.port, who[i], RPORT + i, err,
		    sizeof(err))) != -1, "%s", err);
	if (!pi_refused(&t, &p, RPORT + 2, 0) ||
	    !pi_refused(&t, &p, RPORT + 3, 1))
		goto out;
	for (i = 2; i < 6; i++)
		REQUIRE(&t, (fd[i] = pi_hold(p.port, who[i], RPORT + 10 + i,
		    err, sizeof(err))) != -1, "%s (the balancer's own address "
		    "or another client counted against " REAL "'s limit?)",
		    err);
	if (!pi_again(&t, &p, &fd[0]))
		goto out;
	cl_close_fds(fd, 6);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, fd, 6);
}

#define BURST 50

/* n bad clients at once ("garbage N\n"), each closed without a byte. */
static int
bu_burst(struct tres *t, struct echod_proc *p, int n)
{
	int fd[BURST], i;
	char msg[32];

	for (i = 0; i < n; i++)
		fd[i] = -1;
	for (i = 0; i < n; i++) {
		REQUIRE(t, (fd[i] = h_connect(p->port, 0)) != -1, "connect "
		    "%d: %s", i, strerror(errno));
		snprintf(msg, sizeof(msg), "garbage %d\n", i);
		(void)send(fd[i], msg, strlen(msg), MSG_NOSIGNAL);
	}
	for (i = 0; i < n; i++)
		REQUIRE(t, cl_closed(fd[i], CLOSE_MS), "bad client %d of the "
		    "burst not closed without a byte back", i);
out:
	cl_close_fds(fd, n);
	return !t->failed;
}

/*
 * After the burst, one bad client every 100 ms until a PROXY line more
 * than *lines is logged (at most 5 s): how many were sent into *extra.
 */
static int
bu_until_line(struct tres *t, struct echod_proc *p, int lines, int *extra)
{
	long long deadline = h_now_ms() + 5000;

	*extra = 0;
	while (h_now_ms() < deadline && *extra < 60) {
		(void)poll(NULL, 0, 100);
		if (!bu_burst(t, p, 1))
			return 0;
		++*extra;
		if (px_lines(p).n > lines)
			return 1;
	}
	REQUIRE(t, 0, "no PROXY line after the first within 5 s of bad "
	    "clients every 100 ms (%d of them)", *extra);
out:
	return 0;
}

void
proxylive_burst(const char *m)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	struct pxlines pl;
	long long t0, ms;
	int extra = 0, total;

	cl_proc_init(&p);
	REQUIRE(&t, px_start(&p, m, 1, 1, "\"127.0.0.1/32\"",
	    "proxy_timeout = 30\nlog_level = info\n") == 0, "start failed");
	t0 = h_now_ms();
	if (!bu_burst(&t, &p, BURST))
		goto out;
	REQUIRE(&t, cl_log_wait(&p, "PROXY: closed", 1, REPLY_MS), "no PROXY "
	    "line for %d bad clients", BURST);
	pl = px_lines(&p);
	ms = h_now_ms() - t0;
	REQUIRE(&t, pl.n <= 2 + ms / 1000, "%d PROXY lines for a burst of %d "
	    "in %lld ms: one a second per worker", pl.n, BURST, ms);
	REQUIRE(&t, pl.first == 1, "the first PROXY line counts %ld", pl.first);
	if (!bu_until_line(&t, &p, pl.n, &extra))
		goto out;
	pl = px_lines(&p);
	ms = h_now_ms() - t0;
	total = BURST + extra;
	printf("proxylive: %d bad clients in %lld ms, %d PROXY lines, "
	    "counters sum to %ld, the last %ld, under %s\n", total, ms, pl.n,
	    pl.sum, pl.last, m ? m : "events");
	REQUIRE(&t, pl.n <= 2 + ms / 1000, "%d PROXY lines in %lld ms: one a "
	    "second per worker", pl.n, ms);
	/* The line of the last close may come after our look at the log. */
	REQUIRE(&t, pl.sum == total || pl.sum == total - 1, "the PROXY lines' "
	    "counters sum to %ld for %d bad clients", pl.sum, total);
	REQUIRE(&t, pl.last >= 2, "the later PROXY line counts %ld: not the "
	    "clients closed since the one before", pl.last);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}

/* ---- this suite's own cases ---- */

/* The builders, through the daemon's own parser: what they say they are. */
START_TEST(builders)
{
	const struct hspec *hs = &hspecs[_i];
	unsigned char buf[HDR_MAX + 4];
	struct proxy_hdr h;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&h.src;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h.src;
	char a[INET6_ADDRSTRLEN] = "";
	size_t n, used = 0;

	n = hs_build(hs, RPORT, 7008, buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	memcpy(buf + n, "abc", 3);
	ck_assert_int_eq(proxy_parse(buf, n + 3, &h, &used), PROXY_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_int_eq(h.version, hs->v2 ? 2 : 1);
	ck_assert_int_eq(h.local, hs->src == NULL);
	ck_assert_uint_eq(hs_build(hs, RPORT, 7008, buf, n - 1), 0);
	if (hs->src == NULL)
		return;
	if (h.src.ss_family == AF_INET)
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
	else
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
	ck_assert_str_eq(a, hs->src);
	ck_assert_uint_eq(ntohs(h.src.ss_family == AF_INET ? s4->sin_port :
	    s6->sin6_port), RPORT);
}
END_TEST

/* Each bad input is what its reason says, to the daemon's parser. */
START_TEST(bad_inputs)
{
	const struct bspec *bs = &bspecs[_i];
	unsigned char buf[HDR_MAX];
	struct proxy_hdr h;
	size_t n = bs_build(bs, buf, sizeof(buf)), used = 0;
	enum proxy_result r = proxy_parse(buf, n, &h, &used);

	if (bs->early != 0) {
		ck_assert_int_eq(r, PROXY_NEED_MORE);
		return;
	}
	ck_assert_int_eq(r, PROXY_BAD);
	ck_assert_str_eq(h.why, bs->why + strlen("bad header: "));
}
END_TEST

START_TEST(ready_ports)
{
	static const struct {
		const char *ready;
		int proxied, idx, port;
	} tab[] = {
		{ "READY=1\nSTATUS=ready: 2 workers, listening on "
		    "127.0.0.1:7007, 127.0.0.1:7008 (PROXY)\n", 0, 0, 7007 },
		{ "READY=1\nSTATUS=ready: 2 workers, listening on "
		    "127.0.0.1:7007, 127.0.0.1:7008 (PROXY)\n", 1, 0, 7008 },
		{ "READY=1\nSTATUS=ready: 2 workers, listening on "
		    "127.0.0.1:7007, 127.0.0.1:7008 (PROXY)\n", 0, 1, -1 },
		{ "STATUS=listening on [::1]:9 (PROXY), 127.0.0.1:10 (PROXY), "
		    "[::1]:11", 1, 1, 10 },
		{ "STATUS=listening on [::1]:9 (PROXY), 127.0.0.1:10 (PROXY), "
		    "[::1]:11", 0, 0, 11 },
		{ "STATUS=listening on 127.0.0.1:5 (PROXY)", 1, 0, 5 },
		{ "STATUS=listening on 127.0.0.1:5 (PROXY)", 0, 0, -1 },
		{ "READY=1", 0, 0, -1 },
	};
	struct echod_proc p;
	int i;

	for (i = 0; i < H_NELEM(tab); i++) {
		snprintf(p.ready, sizeof(p.ready), "%s", tab[i].ready);
		ck_assert_msg(cl_ready_port(&p, tab[i].proxied, tab[i].idx) ==
		    tab[i].port, "row %d: %d, want %d", i, cl_ready_port(&p,
		    tab[i].proxied, tab[i].idx), tab[i].port);
	}
}
END_TEST

/* A header sent in chunks arrives whole, in order. */
START_TEST(chunks)
{
	unsigned char hdr[HDR_MAX], got[HDR_MAX];
	size_t n = hs_build(&hspecs[HS_V2_TCP6], RPORT, 7008, hdr, sizeof(hdr));
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(cl_send_chunks(sv[0], hdr, n, 5, 1), 0);
	ck_assert_uint_eq(h_read_exact(sv[1], got, n, 1000), n);
	ck_assert_mem_eq(got, hdr, n);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/*
 * Every reason of the log, one daemon per bad input (the log says one
 * PROXY line a second per worker: one daemon would take NBAD seconds).
 * The daemons start side by side.
 */
START_TEST(reasons)
{
	static struct echod_proc p[NBAD];
	struct tres t = { 0, "" };
	unsigned char buf[HDR_MAX];
	char me[64];
	size_t n;
	int i, fd = -1;

	for (i = 0; i < NBAD; i++)
		cl_proc_init(&p[i]);
	for (i = 0; i < NBAD; i++)
		REQUIRE(&t, h_spawn(&p[i], "listen = {}\nproxy_listen = { "
		    "\"127.0.0.1:0\" }\nproxy_trusted = { \"127.0.0.1/32\" }\n"
		    "workers = 1\nproxy_timeout = 30\n", NULL) == 0, "spawn");
	for (i = 0; i < NBAD; i++)
		REQUIRE(&t, h_wait_ready(&p[i], START_MS) == 0, "start %d", i);
	for (i = 0; i < NBAD; i++) {
		n = bs_build(&bspecs[i], buf, sizeof(buf));
		REQUIRE(&t, (fd = px_connect(NULL, p[i].port, me,
		    sizeof(me))) != -1, "connect: %s", strerror(errno));
		REQUIRE(&t, px_rejected(fd, buf, n, bspecs[i].early), "%s: not "
		    "closed without a byte back", bspecs[i].name);
		cl_close_fds(&fd, 1);
		REQUIRE(&t, px_log_close(&p[i], me, bspecs[i].why, REPLY_MS),
		    "%s: no line 'PROXY: closed %s: %s'", bspecs[i].name, me,
		    bspecs[i].why);
	}
	for (i = 0; i < NBAD; i++)
		REQUIRE_STOPPED(&t, &p[i], 5000);
out:
	cl_close_fds(&fd, 1);
	for (i = 0; i < NBAD; i++)
		if (t.failed)
			cl_log_dump_if_failed(&t, &p[i]);
	for (i = 0; i < NBAD; i++)
		h_cleanup(&p[i]);
	ck_assert_msg(!t.failed, "%s", t.msg);
}
END_TEST

/*
 * A plain listener beside a proxied one: the plain one echoes as ever,
 * a PROXY line included; the proxied one wants its header; the ready
 * line marks which is which.
 */
START_TEST(mixed)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	unsigned char hdr[HDR_MAX];
	char conf[320], me[64], err[160], line[160];
	int pport = cl_free_port(), plain, fd = -1;
	size_t n;

	cl_proc_init(&p);
	snprintf(conf, sizeof(conf), "listen = { \"127.0.0.1:0\" }\n"
	    "proxy_listen = { \"127.0.0.1:%d\" }\nproxy_trusted = { "
	    "\"127.0.0.1/32\" }\nworkers = 2\nproxy_timeout = 30\n"
	    "log_level = info\n", pport);
	REQUIRE(&t, pport > 0 && h_start(&p, conf, NULL, START_MS) == 0,
	    "start failed");
	plain = cl_ready_port(&p, 0, 0);
	REQUIRE(&t, cl_ready_port(&p, 1, 0) == pport && plain > 0 &&
	    plain != pport, "the ready line '%s' does not mark 127.0.0.1:%d, "
	    "and only it, (PROXY)", p.ready, pport);
	REQUIRE(&t, cl_echo_new(plain, "plain client\n", REPLY_MS, err,
	    sizeof(err)), "plain listener: %s", err);
	n = cl_proxy_v1(line, sizeof(line), "TCP4", REAL, RPORT, LO, plain);
	REQUIRE(&t, n > 0 && cl_echo_new(plain, line, REPLY_MS, err,
	    sizeof(err)), "a PROXY line to the plain listener: %s", err);
	REQUIRE(&t, (fd = px_connect(NULL, pport, me, sizeof(me))) != -1,
	    "connect: %s", strerror(errno));
	REQUIRE(&t, px_rejected(fd, (const unsigned char *)"plain client\n",
	    13, 0), "the proxied listener echoed a client without a header");
	cl_close_fds(&fd, 1);
	n = hs_build(&hspecs[HS_V2_TCP6], RPORT, pport, hdr, sizeof(hdr));
	REQUIRE(&t, (fd = px_connect(NULL, pport, me, sizeof(me))) != -1 &&
	    px_echo_after(fd, hdr, n, PX_ONE_WRITE, err, sizeof(err)),
	    "the proxied listener: %s", err);
	cl_close_fds(&fd, 1);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, &fd, 1);
}
END_TEST

#define FLOOD_BAD 2000
#define FLOOD_GOOD 200
#define FLOOD_BATCH 110 /* 100 bad and 10 valid clients open at once */

/* Client i of the flood: bad (a bspec in turn, or junk) or valid. */
static size_t
fl_bytes(int i, int port, unsigned char *buf, size_t len, int *early)
{
	const struct bspec *bs;
	unsigned x = (unsigned)i * 2654435761u;
	size_t n, k;

	*early = 0;
	if (i % (FLOOD_BATCH / 10) == 0) {
		n = hs_build(&hspecs[i / 11 % H_NELEM(hspecs)], RPORT, port,
		    buf, len - 16);
		memcpy(buf + n, "valid client\n", 13);
		return n + 13;
	}
	if (i % 3 != 0) {
		bs = &bspecs[i % NBAD];
		*early = bs->early;
		return bs_build(bs, buf, len);
	}
	buf[0] = (unsigned char)('a' + x % 26); /* not 'P', not '\r' */
	for (n = 1 + x % 200, k = 1; k < n && k < len; k++)
		buf[k] = (unsigned char)((x >> (k % 24)) + k);
	return k;
}

/* One batch: open, send, then each closed or echoed. */
static int
fl_batch(struct tres *t, int port, int first, int *good)
{
	unsigned char buf[HDR_MAX];
	char got[13];
	int fd[FLOOD_BATCH], early[FLOOD_BATCH], i;
	size_t n;

	for (i = 0; i < FLOOD_BATCH; i++)
		fd[i] = -1;
	for (i = 0; i < FLOOD_BATCH; i++) {
		n = fl_bytes(first + i, port, buf, sizeof(buf), &early[i]);
		REQUIRE(t, (fd[i] = h_connect(port, 0)) != -1, "connect: %s",
		    strerror(errno));
		(void)send(fd[i], buf, n, MSG_NOSIGNAL);
		if (early[i] == EARLY_FIN)
			(void)shutdown(fd[i], SHUT_WR);
		if (early[i] == EARLY_RST) {
			cl_reset(fd[i]);
			fd[i] = -1; /* nothing to see from here: the log's */
		}
	}
	for (i = 0; i < FLOOD_BATCH; i++) {
		if (fd[i] == -1)
			continue; /* reset by us: nothing to see */
		if ((first + i) % (FLOOD_BATCH / 10) != 0) {
			REQUIRE(t, cl_closed(fd[i], CLOSE_MS), "bad client %d "
			    "not closed without a byte back", first + i);
			continue;
		}
		REQUIRE(t, h_read_exact(fd[i], got, 13, REPLY_MS) == 13 &&
		    memcmp(got, "VALID CLIENT\n", 13) == 0, "valid client %d "
		    "of the flood not echoed", first + i);
		++*good;
		cl_close_fds(&fd[i], 1); /* prefork: its worker is free again */
	}
out:
	cl_close_fds(fd, FLOOD_BATCH);
	return !t->failed;
}

/* Wait until pid has want descriptors; the last count. */
static int
fl_fds(pid_t pid, int want, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	int n;

	while ((n = pf_count_fds(pid)) != want && h_now_ms() < deadline)
		h_poll_pause();
	return n;
}

#define FL_WORKERS 2
#define FL_CONNS 8 /* a worker holds at once (prefork: workers) */

/* The workers' pids and descriptor counts; how many workers, 0 if one
 * is missing. */
static int
fl_workers(struct echod_proc *p, const char *m, pid_t *w, int *fds)
{
	int i, n = h_model_workers(m, FL_WORKERS, FL_CONNS);

	for (i = 0; i < n; i++)
		if ((w[i] = h_worker_pid(p->pid, (unsigned)i)) <= 0 ||
		    (fds[i] = pf_count_fds(w[i])) <= 0)
			return 0;
	return n;
}

/*
 * The flood: FLOOD_BAD clients with garbage and FLOOD_GOOD valid ones
 * among them.  Every valid one echoed; the same workers, each with as
 * many descriptors as before; the PROXY lines one a second per worker.
 */
void
proxylive_flood(const char *m)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	pid_t w[FL_WORKERS * FL_CONNS];
	int fds[FL_WORKERS * FL_CONNS], i, nw = 0, good = 0, n;
	long long t0, ms;

	cl_proc_init(&p);
	REQUIRE(&t, px_start(&p, m, FL_WORKERS, FL_CONNS, "\"127.0.0.1/32\"",
	    "proxy_timeout = 30\nlog_level = info\n") == 0, "start failed");
	REQUIRE(&t, (nw = fl_workers(&p, m, w, fds)) > 0, "a worker missing");
	t0 = h_now_ms();
	for (i = 0; i < FLOOD_BAD + FLOOD_GOOD; i += FLOOD_BATCH)
		if (!fl_batch(&t, p.port, i, &good))
			goto out;
	ms = h_now_ms() - t0;
	printf("proxylive: %d clients (%d valid) in %lld ms, %d PROXY lines, "
	    "under %s\n", i, good, ms, px_lines(&p).n, m ? m : "events");
	REQUIRE(&t, good == FLOOD_GOOD, "%d valid clients, want %d", good,
	    FLOOD_GOOD);
	REQUIRE(&t, px_lines(&p).n <= nw * (2 + ms / 1000), "%d PROXY lines "
	    "from %d workers in %lld ms", px_lines(&p).n, nw, ms);
	for (i = 0; i < nw; i++) {
		REQUIRE(&t, h_worker_pid(p.pid, (unsigned)i) == w[i], "worker "
		    "%d (pid %d) did not live through the flood", i, (int)w[i]);
		n = fl_fds(w[i], fds[i], 3000);
		REQUIRE(&t, n == fds[i], "worker %d holds %d descriptors after "
		    "the flood, %d before", i, n, fds[i]);
	}
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}

/* Split s at blanks into at most max tokens (s is changed); how many. */
static int
sb_split(char *s, char **tok, int max)
{
	int n = 0;

	for (s = strtok(s, " \n"); s != NULL && n < max;
	    s = strtok(NULL, " \n"))
		tok[n++] = s;
	return n;
}

/* The scoreboard's columns end with these (the sandbox's may hold blanks,
 * "off (this build)": a row is read from its end). */
#define SB_TAIL "proxied px-closed last-client"

/*
 * In the last scoreboard table of the log (SIGUSR1), the row of worker
 * pid w: its proxied and px-closed values into px and pxc, and the row's
 * text into row.  The last client is one field ("-", an address) or
 * three ("A via B").  1, or 0 if there is no such table or row yet.
 */
static int
sb_row(struct echod_proc *p, pid_t w, long *px, long *pxc, char *row,
    size_t rowlen)
{
	char *hdr = NULL, *s, *e, *m, *tok[32], copy[512], pid[24];
	int n, cl;

	h_log_read(p, logbuf, sizeof(logbuf));
	for (s = logbuf; (s = strstr(s, " master: slot pid")) != NULL; s++)
		hdr = s + strlen(" master: ");
	if (hdr == NULL || (e = strchr(hdr, '\n')) == NULL ||
	    e - hdr < (long)strlen(SB_TAIL) ||
	    memcmp(e - strlen(SB_TAIL), SB_TAIL, strlen(SB_TAIL)) != 0)
		return 0;
	snprintf(pid, sizeof(pid), "%d", (int)w);
	for (s = e + 1; (e = strchr(s, '\n')) != NULL; s = e + 1) {
		snprintf(copy, sizeof(copy), "%.*s", (int)(e - s), s);
		if ((m = strstr(copy, " master: ")) == NULL)
			continue;
		m += strlen(" master: ");
		snprintf(row, rowlen, "%s", m);
		n = sb_split(m, tok, 32);
		if (n < 2 || strcmp(tok[1], pid) != 0)
			continue; /* not slot, pid, ...: another row or line */
		cl = n >= 3 && strcmp(tok[n - 2], "via") == 0 ? 3 : 1;
		if (n < cl + 4)
			return 0;
		*px = atol(tok[n - cl - 2]);
		*pxc = atol(tok[n - cl - 1]);
		return 1;
	}
	return 0;
}

/* Wait for the scoreboard row of w (sb_row) after a SIGUSR1. */
static int
sb_wait_row(struct echod_proc *p, pid_t w, long *px, long *pxc, char *row,
    size_t rowlen)
{
	long long deadline = h_now_ms() + REPLY_MS;

	do {
		if (sb_row(p, w, px, pxc, row, rowlen))
			return 1;
		h_poll_pause();
	} while (h_now_ms() < deadline);
	return 0;
}

/* The scoreboard's clients: three valid headers, the last one REAL's
 * ("REAL:PORT via ME" into last); 0, or -1. */
static int
sb_valid(struct tres *t, int port, char *last, size_t lastlen)
{
	static const int valid[] = { HS_V2_TCP6, HS_V2_LOCAL, HS_V1_TCP4 };
	unsigned char hdr[HDR_MAX];
	char me[64], err[128];
	size_t n;
	int i, fd = -1;

	for (i = 0; i < H_NELEM(valid); i++) {
		n = hs_build(&hspecs[valid[i]], RPORT + i, port, hdr,
		    sizeof(hdr));
		REQUIRE(t, (fd = px_connect(NULL, port, me, sizeof(me))) !=
		    -1 && px_echo_after(fd, hdr, n, PX_ONE_WRITE, err,
		    sizeof(err)), "%s: %s", hspecs[valid[i]].name, err);
		cl_close_fds(&fd, 1);
	}
	snprintf(last, lastlen, REAL ":%d via %s", RPORT + i - 1, me);
out:
	cl_close_fds(&fd, 1);
	return t->failed ? -1 : 0;
}

/* Three PROXY closes: no header, a bad one, an untrusted peer. */
static int
sb_bad(struct tres *t, int port)
{
	unsigned char hdr[HDR_MAX];
	char me[64];
	size_t n;
	int i, fd = -1;

	for (i = 0; i < 3; i++) {
		n = bs_build(&bspecs[i == 1 ? 4 : 0], hdr, sizeof(hdr));
		REQUIRE(t, (fd = px_connect(i == 2 ? LO2 : LO, port, me,
		    sizeof(me))) != -1 && px_rejected(fd, hdr, n, 0), "bad "
		    "client %d (%s) not closed", i, me);
		cl_close_fds(&fd, 1);
	}
out:
	cl_close_fds(&fd, 1);
	return t->failed ? -1 : 0;
}

/*
 * The scoreboard (SIGUSR1): the worker's headers accepted (proxied:
 * LOCAL too), its PROXY closes (px-closed: an untrusted peer too), and
 * its last client, named by the header's source via the balancer; the
 * counts added by whatever serves a connection (thread, child).
 */
void
proxylive_scoreboard(const char *m)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char row[512] = "", last[128] = "";
	long px = -1, pxc = -1;
	pid_t w;

	cl_proc_init(&p);
	REQUIRE(&t, px_start(&p, m, 1, 1, "\"127.0.0.1/32\"",
	    "proxy_timeout = 30\nlog_level = info\n") == 0, "start failed");
	REQUIRE(&t, (w = h_worker_pid(p.pid, 0)) > 0, "no worker 0");
	if (sb_valid(&t, p.port, last, sizeof(last)) == -1 ||
	    sb_bad(&t, p.port) == -1)
		goto out;
	REQUIRE(&t, kill(p.pid, SIGUSR1) == 0, "kill: %s", strerror(errno));
	REQUIRE(&t, sb_wait_row(&p, w, &px, &pxc, row, sizeof(row)), "no "
	    "scoreboard table ending in '" SB_TAIL "' with a row for worker 0 "
	    "(pid %d)", (int)w);
	REQUIRE(&t, px == 3 && pxc == 3, "the scoreboard says proxied %ld, "
	    "px-closed %ld; want 3 and 3: '%s'", px, pxc, row);
	REQUIRE(&t, strstr(row, last) != NULL, "the scoreboard's row does not "
	    "name the last client '%s': '%s'", last, row);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude(&t, &p);
}

/*
 * limits_exempt_loopback judges the header's source, not the balancer:
 * with max_connections_per_ip = 1, a second client from REAL is refused
 * though the balancer is 127.0.0.1, and two from 127.0.0.9 (loopback,
 * exempt) are served.
 */
START_TEST(exempt_source)
{
	static const struct hspec lo9 = { "v1 TCP4 from 127.0.0.9", 0, "TCP4",
		"127.0.0.9", "127.0.0.1", 0 };
	struct echod_proc p;
	struct tres t = { 0, "" };
	char err[160];
	int fd[3] = { -1, -1, -1 }, i;

	cl_proc_init(&p);
	REQUIRE(&t, px_start(&p, NULL, 1, 8, "\"127.0.0.1/32\"",
	    "max_connections_per_ip = 1\nlimits_exempt_loopback = true\n"
	    "proxy_timeout = 30\nlog_level = info\n") == 0, "start failed");
	REQUIRE(&t, (fd[0] = pi_hold(p.port, &hspecs[HS_V1_TCP4], RPORT, err,
	    sizeof(err))) != -1, "%s", err);
	if (!pi_refused(&t, &p, RPORT + 2, 0))
		goto out;
	for (i = 1; i < 3; i++)
		REQUIRE(&t, (fd[i] = pi_hold(p.port, &lo9, RPORT + i, err,
		    sizeof(err))) != -1, "%s: a loopback source is exempt",
		    err);
	cl_close_fds(fd, 3);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, fd, 3);
}
END_TEST

/*
 * proxy_trusted as blocks, and an IPv6 proxied listener: 127.0.0.3 lies
 * in 127.0.0.0/30 and is served, 127.0.0.4 does not and is closed; a
 * balancer on ::1 (::1/128) passes an IPv4 client, named "via [::1]".
 */
START_TEST(families)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	unsigned char hdr[HDR_MAX];
	char me[64], err[160], want[192];
	int v6 = cl_have_ipv6(), port6, fd = -1;
	size_t n;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, v6 ? "listen = {}\nproxy_listen = { "
	    "\"127.0.0.1:0\", \"[::1]:0\" }\nproxy_trusted = { "
	    "\"127.0.0.0/30\", \"::1/128\" }\nworkers = 1\n"
	    "log_level = debug\n" : "listen = {}\nproxy_listen = { "
	    "\"127.0.0.1:0\" }\nproxy_trusted = { \"127.0.0.0/30\" }\n"
	    "workers = 1\nlog_level = debug\n", NULL, START_MS) == 0,
	    "start failed");
	n = hs_build(&hspecs[HS_V1_TCP4], RPORT, p.port, hdr, sizeof(hdr));
	REQUIRE(&t, (fd = px_connect("127.0.0.3", p.port, me, sizeof(me))) !=
	    -1 && px_echo_after(fd, hdr, n, PX_ONE_WRITE, err, sizeof(err)),
	    "from 127.0.0.3, in 127.0.0.0/30: %s", err);
	cl_close_fds(&fd, 1);
	REQUIRE(&t, (fd = px_connect("127.0.0.4", p.port, me, sizeof(me))) !=
	    -1 && px_rejected(fd, hdr, n, 0), "127.0.0.4, outside "
	    "127.0.0.0/30, was served");
	REQUIRE(&t, px_log_close(&p, me, "not in proxy_trusted", REPLY_MS),
	    "no line 'PROXY: closed %s: not in proxy_trusted'", me);
	cl_close_fds(&fd, 1);
	if (!v6) {
		fprintf(stderr, "proxylive: families: the IPv6 part SKIPPED: "
		    "this host cannot bind ::1\n");
		REQUIRE_STOPPED(&t, &p, 5000);
		goto out;
	}
	REQUIRE(&t, (port6 = cl_ready_port(&p, 1, 1)) > 0, "no second "
	    "proxied listener in '%s'", p.ready);
	REQUIRE(&t, (fd = cl_connect("::1", "::1", port6)) != -1 &&
	    cl_local_name(fd, me, sizeof(me)) == me &&
	    px_echo_after(fd, hdr, n, PX_ONE_WRITE, err, sizeof(err)),
	    "[::1]:%d, from ::1: %s", port6, err);
	snprintf(want, sizeof(want), REAL ":%d via %s closed: ", RPORT, me);
	REQUIRE(&t, cl_log_wait(&p, want, 1, REPLY_MS), "no line '%s...'",
	    want);
	cl_close_fds(&fd, 1);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, &fd, 1);
}
END_TEST

/*
 * proxy_listen without proxy_trusted: the daemon says at start-up that
 * nobody may use it, and closes a valid header from 127.0.0.1.
 */
START_TEST(nobody_trusted)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	unsigned char hdr[HDR_MAX];
	char me[64];
	size_t n;
	int fd = -1;

	cl_proc_init(&p);
	REQUIRE(&t, h_start(&p, "listen = {}\nproxy_listen = { "
	    "\"127.0.0.1:0\" }\nworkers = 1\n", NULL, START_MS) == 0,
	    "start failed");
	REQUIRE(&t, cl_log_count(&p, "proxy_trusted is empty") == 1, "no "
	    "start-up warning that proxy_trusted is empty");
	n = hs_build(&hspecs[HS_V1_TCP4], RPORT, p.port, hdr, sizeof(hdr));
	REQUIRE(&t, (fd = px_connect(NULL, p.port, me, sizeof(me))) != -1 &&
	    px_rejected(fd, hdr, n, 0), "a valid header served with "
	    "proxy_trusted empty");
	REQUIRE(&t, px_log_close(&p, me, "not in proxy_trusted", REPLY_MS),
	    "no line 'PROXY: closed %s: not in proxy_trusted'", me);
	cl_close_fds(&fd, 1);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, &fd, 1);
}
END_TEST

/* Two ports on 127.0.0.1 nothing listened on a moment ago; 0, or -1. */
static int
two_ports(int *a, int *b)
{
	int i;

	*a = cl_free_port();
	for (i = 0, *b = *a; i < 8 && *b == *a; i++)
		*b = cl_free_port();
	return *a > 0 && *b > 0 && *a != *b ? 0 : -1;
}

/* The configuration with listen = {plain} and proxy_listen = {px}
 * (0: empty) into buf. */
static const char *
rl_text(char *buf, size_t len, int plain, int px)
{
	char l[48] = "", pl[48] = "";

	if (plain)
		snprintf(l, sizeof(l), "\"127.0.0.1:%d\"", plain);
	if (px)
		snprintf(pl, sizeof(pl), "\"127.0.0.1:%d\"", px);
	snprintf(buf, len, "listen = { %s }\nproxy_listen = { %s }\n"
	    "proxy_trusted = { \"127.0.0.1/32\" }\nworkers = 1\n"
	    "proxy_timeout = 30\nlog_level = info\n", l, pl);
	return buf;
}

/* SIGHUP, then RELOADING=1 and READY=1 (into p->ready). */
static int
rl_reload(struct echod_proc *p)
{
	return kill(p->pid, SIGHUP) == 0 &&
	    h_wait_notify(p, "RELOADING=1", 10000, NULL, 0) == 0 &&
	    h_wait_notify(p, "READY=1", 10000, p->ready, sizeof(p->ready)) == 0;
}

/* Port a proxied and b plain now: a needs a header, b does not. */
static int
rl_check(struct tres *t, struct echod_proc *p, int a, int b)
{
	unsigned char hdr[HDR_MAX];
	char me[64], err[160];
	int fd = -1;
	size_t n;

	REQUIRE(t, cl_ready_port(p, 1, 0) == a && cl_ready_port(p, 0, 0) == b,
	    "READY=1 does not mark 127.0.0.1:%d, and only it, (PROXY): '%s'",
	    a, p->ready);
	REQUIRE(t, (fd = px_connect(NULL, a, me, sizeof(me))) != -1 &&
	    px_rejected(fd, (const unsigned char *)"hello\n", 6, 0), "port %d "
	    "(proxied now) served a client without a header", a);
	cl_close_fds(&fd, 1);
	n = hs_build(&hspecs[HS_V1_TCP4], RPORT, a, hdr, sizeof(hdr));
	REQUIRE(t, (fd = px_connect(NULL, a, me, sizeof(me))) != -1 &&
	    px_echo_after(fd, hdr, n, PX_ONE_WRITE, err, sizeof(err)),
	    "port %d (proxied now), with a header: %s", a, err);
	REQUIRE(t, cl_echo_new(b, "plain now\n", REPLY_MS, err, sizeof(err)),
	    "port %d (plain now): %s", b, err);
out:
	cl_close_fds(&fd, 1);
	return !t->failed;
}

/*
 * Reload: two addresses swap between listen and proxy_listen, keeping
 * their sockets (no "no longer listening"), a plain connection open
 * across stays plain; then proxy_listen emptied closes its address.
 */
START_TEST(reload_swap)
{
	struct echod_proc p;
	struct tres t = { 0, "" };
	char conf[384];
	int a, b, c = -1;

	cl_proc_init(&p);
	REQUIRE(&t, two_ports(&a, &b) == 0, "no two free ports");
	REQUIRE(&t, h_start(&p, rl_text(conf, sizeof(conf), a, b), NULL,
	    START_MS) == 0, "start failed");
	if (!rl_check(&t, &p, b, a))
		goto out;
	REQUIRE(&t, (c = h_connect(a, 0)) != -1 && cl_echo(c, "before\n",
	    REPLY_MS), "a plain client before the reload");
	REQUIRE(&t, cl_write_conf(&p, rl_text(conf, sizeof(conf), b, a)) == 0,
	    "rewrite: %s", strerror(errno));
	REQUIRE(&t, rl_reload(&p), "no RELOADING=1 then READY=1 after SIGHUP");
	REQUIRE(&t, cl_echo(c, "across\n", REPLY_MS), "the plain client open "
	    "across the reload, its address proxied now, not echoed");
	if (!rl_check(&t, &p, a, b))
		goto out;
	REQUIRE(&t, cl_log_count(&p, "no longer listening") == 0, "a socket "
	    "closed though its address only moved between the lists");
	REQUIRE(&t, cl_write_conf(&p, rl_text(conf, sizeof(conf), b, 0)) == 0,
	    "rewrite: %s", strerror(errno));
	REQUIRE(&t, rl_reload(&p), "no RELOADING=1 then READY=1 after SIGHUP");
	REQUIRE(&t, cl_ready_port(&p, 1, 0) == -1, "READY=1 still has a "
	    "proxied listener once proxy_listen is empty: '%s'", p.ready);
	snprintf(conf, sizeof(conf), "reload: no longer listening on "
	    "127.0.0.1:%d", a);
	REQUIRE(&t, cl_log_wait(&p, conf, 1, REPLY_MS), "no line '%s'", conf);
	/* The old generation's workers close it as they finish draining. */
	REQUIRE(&t, cl_port_refused_within(a, 5000), "127.0.0.1:%d still accepts "
	    "connections 5 s after proxy_listen was emptied", a);
	cl_close_fds(&c, 1);
	REQUIRE_STOPPED(&t, &p, 5000);
out:
	cl_conclude_fds(&t, &p, &c, 1);
}
END_TEST

Suite *
proxylive_suite(void)
{
	Suite *s = suite_create("proxylive");
	TCase *tc;

	tc = h_case(s, "builders", 0, H_TESTS(ready_ports, chunks));
	tcase_add_loop_test(tc, builders, 0, H_NELEM(hspecs));
	tcase_add_loop_test(tc, bad_inputs, 0, NBAD);
	h_case(s, "reasons", 60, H_TESTS(reasons));
	h_case(s, "mixed", 30, H_TESTS(mixed));
	h_case(s, "reload", 60, H_TESTS(reload_swap));
	h_case(s, "exempt", 30, H_TESTS(exempt_source));
	h_case(s, "families", 30, H_TESTS(families, nobody_trusted));
	return s;
}
