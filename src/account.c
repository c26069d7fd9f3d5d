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

/* The buffer's size is a guess: grow it on ERANGE. */
int
account_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char *buf = NULL, *nbuf;
	size_t size = 512;
	int e;

	do {
		if ((nbuf = realloc(buf, size *= 2)) == NULL) {
			e = ENOMEM;
			break;
		}
		buf = nbuf;
		e = getpwnam_r(name, &pw, buf, size, &res);
	} while (e == ERANGE && size < LOOKUP_BUF_MAX);
	if (res != NULL) {
		*uid = pw.pw_uid;
		*gid = pw.pw_gid;
	}
	free(buf);
	return result(e, res != NULL);
}

/* As account_user, for a group (a group's member list can be long). */
int
account_group(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	char *buf = NULL, *nbuf;
	size_t size = 512;
	int e;

	do {
		if ((nbuf = realloc(buf, size *= 2)) == NULL) {
			e = ENOMEM;
			break;
		}
		buf = nbuf;
		e = getgrnam_r(name, &gr, buf, size, &res);
	} while (e == ERANGE && size < LOOKUP_BUF_MAX);
	if (res != NULL)
		*gid = gr.gr_gid;
	free(buf);
	return result(e, res != NULL);
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
