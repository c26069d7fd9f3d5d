/*
 * listener: listening addresses and sockets.
 *
 * Parses "host:port", "[v6]:port" and "*:port" (numeric only: echod never
 * resolves names), opens the sockets, or adopts the ones systemd passed
 * (LISTEN_FDS).  Reports errors in the caller's buffer; never exits.
 */
#ifndef ECHOD_LISTENER_H
#define ECHOD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool any; /* "*": all IPv4 and IPv6 addresses (dual-stack [::]) */
};

/* Parse spec; -1 with a message in err ("'x': why; expected ..."). */
int listener_parse(const char *spec, struct listen_addr *out, char *err,
    size_t errlen);

/*
 * Whether a and b cannot both listen: the same port (not 0) where one is
 * "*" (dual-stack [::], every address of both families), or one is the
 * wildcard of the other's family (0.0.0.0, or an explicit [::], which is
 * IPv6 only).  The second bind would fail with EADDRINUSE.  Two equal
 * addresses are the caller's to refuse, as the same address.
 */
bool listener_overlap(const struct listen_addr *a,
    const struct listen_addr *b);

/* "127.0.0.1:7007" or "[::1]:7007", numerically. */
void listener_format(const struct sockaddr *sa, char *buf, size_t len);

/*
 * Open a non-blocking, close-on-exec listening socket.  For an "any"
 * address it tries dual-stack [::] first and falls back to 0.0.0.0 where
 * the host has no IPv6.  Returns the fd, or -1 with a message in err.
 */
int listener_open(const struct listen_addr *la, int backlog, char *err,
    size_t errlen);

/* A listening socket the master holds. */
#define LISTENER_NAME_MAX 80
#define LISTENER_MAX 16
struct listener {
	int fd;
	char spec[64];                /* the listen entry; "" if systemd's */
	char name[LISTENER_NAME_MAX]; /* the address it is bound to */
	int from_systemd;             /* socket activation: never ours to close */
	int from_store;               /* came back from systemd's fd store */
	int proxy;                    /* a proxy_listen listener */
};

/*
 * Fill l->name from the socket's address ("127.0.0.1:7007"), with the
 * spec after it for a wildcard ("[::]:7007 (*:7007)").
 */
void listener_name(struct listener *l);

/*
 * The name under which the listener for spec is kept in systemd's fd
 * store: "listen-" and spec with ':' (not allowed in names) as '_'.
 */
void listener_fdname(const char *spec, char *buf, size_t len);

/*
 * The listening sockets systemd passed (LISTEN_FDS, LISTEN_FDNAMES), made
 * non-blocking and close-on-exec, with their names; the variables are
 * removed from the environment so workers never see them.  Returns how
 * many (0 without socket activation), or -1 with a message in err.
 */
int listener_inherit(int *fds, char (*names)[LISTENER_NAME_MAX], int max,
    char *err, size_t errlen);

/*
 * Reconciliation, as a pure decision: which listeners a new list of
 * addresses keeps, which it opens.  keep[i] is the old listener new
 * entry i keeps (the same address), or -1 to open it.  An address that
 * overlaps an old one that is not kept (the same port, one of them a
 * wildcard: "127.0.0.1:X" then "*:X") cannot be opened while the old
 * generation still holds the old socket: -1, with *bad_new and *bad_old
 * naming the pair.
 */
int listener_plan(const struct listen_addr *old, size_t nold,
    const struct listen_addr *nw, size_t nnew, int *keep, size_t *bad_new,
    size_t *bad_old);

/*
 * Close the listeners of ls that are not in keep (the same descriptor);
 * with retired, they are listened on no more: say so and take them out
 * of systemd's fd store.  Never closes systemd's own sockets.
 */
void listener_close_unused(const struct listener *ls, size_t n,
    const struct listener *keep, size_t nkeep, int retired);

/* Offer the listeners echod bound to systemd's fd store (see notify.c). */
void listener_store(struct listener *ls, size_t n);

/*
 * listener_acquire_both: every listener echod starts with: the sockets
 * systemd passed (socket activation: the entries are then not used, and
 * said so in the log), else one per entry, taken back from systemd's fd
 * store where an earlier echod left it, opened otherwise.  0, or -1 with
 * err and nothing left open.  listener_reconcile_both: the listeners for
 * the entries beside the running ones (old): kept where the address is
 * unchanged (with the new backlog), opened where new; 0, or -1 with err
 * and nothing opened.
 *
 * Both take listen's (plain) and proxy_listen's (proxy) entries together:
 * one list of listeners, listen's first, each with its proxy flag.  An
 * address that moves between the two lists keeps its socket on a reload;
 * only the flag changes (and the log says so).  Under socket activation
 * the passed sockets are marked with listener_mark_adopted.  The
 * "listening on" lines end with " (PROXY)" for proxied listeners.
 */
int listener_acquire_both(char *const *plain, size_t nplain,
    char *const *proxy, size_t nproxy, int backlog, struct listener *ls,
    size_t *nls, char *err, size_t errlen);
/*
 * listener_acquire_both with the inherited sockets given (fds, names: n of
 * them, as listener_inherit finds them; an upgrade's handover): kept is
 * what the log says of one taken back by name.  Every fd given is used or
 * closed.
 */
int listener_acquire_given(char *const *plain, size_t nplain,
    char *const *proxy, size_t nproxy, int backlog, int *fds,
    char (*names)[LISTENER_NAME_MAX], int n, const char *kept,
    struct listener *ls, size_t *nls, char *err, size_t errlen);
int listener_reconcile_both(const struct listener *old, size_t nold,
    char *const *plain, size_t nplain, char *const *proxy, size_t nproxy,
    int backlog, struct listener *out, size_t *nout, char *err,
    size_t errlen);

/*
 * Whether a socket bound to sa is the one entry names: the same address
 * and port, where "*:P" is [::]:P (dual-stack) or 0.0.0.0:P.  Pure.
 */
int listener_bound_is(const struct sockaddr *sa,
    const struct listen_addr *entry);

/*
 * The sockets systemd passed (from_systemd) are proxied when bound to an
 * address of proxy (n entries), plain otherwise; a change is logged.
 */
void listener_mark_adopted(struct listener *ls, size_t n, char *const *proxy,
    size_t nproxy);

/* The workers' proxy_mask: bit i set when ls[i] is proxied.  Pure. */
uint32_t listener_proxy_mask(const struct listener *ls, size_t n);

#endif
