/*
 * account: the one user and group lookup.
 *
 * conf.c checks user and group when the file is loaded, so that a typo
 * fails -t and a reload; the privilege drop resolves them again at start.
 * Both go through here, so that they agree on what a name means: names
 * only, the primary group by default, "not found" told apart from a
 * lookup that failed (an NSS module down is not "no such user").  Never
 * exits or logs.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"

#define LOOKUP_BUF_MAX (1024 * 1024) /* getpwnam_r/getgrnam_r buffer */

bool
account_not_found(int e)
{
	return e == 0 || e == ENOENT || e == ESRCH || e == EBADF ||
	    e == EPERM;
}

/* 0 found, 1 not found, -1 with errno. */
static int
result(int e, bool found)
{
	if (found)
		return 0;
	if (account_not_found(e))
		return 1;
	errno = e;
	return -1;
}

/* getpwnam_r or getgrnam_r into ent: its error number, *found. */
typedef int lookup_fn(const char *name, void *ent, char *buf, size_t size,
    bool *found);

static int
get_user(const char *name, void *ent, char *buf, size_t size, bool *found)
{
	struct passwd *res = NULL;
	int e = getpwnam_r(name, ent, buf, size, &res);

	*found = res != NULL;
	return e;
}

static int
get_group(const char *name, void *ent, char *buf, size_t size, bool *found)
{
	struct group *res = NULL;
	int e = getgrnam_r(name, ent, buf, size, &res);

	*found = res != NULL;
	return e;
}

/*
 * Look name up with get into ent; only its numbers may be read after,
 * its strings were in the buffer.  The buffer's size is a guess: grow it
 * on ERANGE (a group's member list can be long).
 */
static int
lookup(lookup_fn *get, const char *name, void *ent)
{
	char *buf = NULL, *nbuf;
	size_t size = 512;
	bool found = false;
	int e;

	do {
		if ((nbuf = realloc(buf, size *= 2)) == NULL) {
			e = ENOMEM;
			break;
		}
		buf = nbuf;
		e = get(name, ent, buf, size, &found);
	} while (e == ERANGE && size < LOOKUP_BUF_MAX);
	free(buf);
	return result(e, found);
}

int
account_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd pw;
	int rc = lookup(get_user, name, &pw);

	if (rc == 0) {
		*uid = pw.pw_uid;
		*gid = pw.pw_gid;
	}
	return rc;
}

int
account_group(const char *name, gid_t *gid)
{
	struct group gr;
	int rc = lookup(get_group, name, &gr);

	if (rc == 0)
		*gid = gr.gr_gid;
	return rc;
}

/* Say why rc (1 or -1) from looking up what ("user", "group") name. */
static int
fail(int rc, const char *what, const char *name, char *err, size_t errlen)
{
	int e = rc == 1 ? ENOENT : errno;

	if (rc == 1)
		snprintf(err, errlen, "%s '%s' does not exist", what, name);
	else
		snprintf(err, errlen, "cannot look up %s '%s': %s", what, name,
		    strerror(e));
	errno = e;
	return -1;
}

int
account_resolve(const char *user, const char *group, uid_t *uid,
    gid_t *gid, char *err, size_t errlen)
{
	uid_t u;
	gid_t g;
	int rc;

	if (user == NULL || user[0] == '\0') {
		snprintf(err, errlen, "the user name is empty");
		errno = EINVAL;
		return -1;
	}
	if ((rc = account_user(user, &u, &g)) != 0)
		return fail(rc, "user", user, err, errlen);
	if (group != NULL && group[0] != '\0' &&
	    (rc = account_group(group, &g)) != 0)
		return fail(rc, "group", group, err, errlen);
	*uid = u;
	*gid = g;
	return 0;
}
