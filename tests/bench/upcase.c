/*
 * upcase: the per-connection program that make bench-compare gives to the
 * fork-per-connection peers (tcpserver, socat, ncat): standard input to
 * standard output with ASCII a-z turned into A-Z and every other byte
 * unchanged, the same transformation as echod.  Each read is written out
 * at once, whole, before the next read: no stdio buffering, no waiting for
 * a line end (tr and sed buffer when not on a terminal, which would stall
 * a client that waits for its reply).  Exits 0 at end of input.
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

int
main(void)
{
	static unsigned char buf[64 * 1024];
	ssize_t n, w, off, i;

	signal(SIGPIPE, SIG_IGN); /* a closed peer: write fails, we exit */
	for (;;) {
		n = read(0, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (i = 0; i < n; i++)
			if (buf[i] >= 'a' && buf[i] <= 'z')
				buf[i] = (unsigned char)(buf[i] - 'a' + 'A');
		for (off = 0; off < n; off += w) {
			w = write(1, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0)
				return 1;
		}
	}
}
