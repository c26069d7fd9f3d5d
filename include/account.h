/*
 * account: the one user and group lookup (the configuration's check at
 * load time, and the privilege drop at start).
 *
 * Names only: a numeric id is not accepted ("1000" is looked up as a
 * name, as getpwnam does; echod has never taken ids).  Reentrant
 * (getpwnam_r, getgrnam_r, the buffer grown on ERANGE up to 1 MiB); never
 * exits or logs.  Whether uid 0 is allowed is the caller's policy.
 */
#ifndef ECHOD_ACCOUNT_H
#define ECHOD_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Resolve user, and group ("" or NULL: the user's primary group), into
 * *uid and *gid.  0, or -1 with one line in err: "user 'x' does not
 * exist", "group 'x' does not exist", "cannot look up user 'x': why",
 * "the user name is empty"; errno is then ENOENT when there is no such
 * user or group, EINVAL for an empty name, else the lookup's error.
 * *uid and *gid are written only on success.
 */
int account_resolve(const char *user, const char *group, uid_t *uid,
    gid_t *gid, char *err, size_t errlen);

/*
 * The two halves, for callers that report each on its own line: 0 with
 * the ids, 1 when there is no such user (group), -1 with errno when the
 * lookup itself failed.  account_user gives the user's primary group.
 */
int account_user(const char *name, uid_t *uid, gid_t *gid);
int account_group(const char *name, gid_t *gid);

/*
 * Whether getpwnam_r/getgrnam_r's result e with no entry means "no such
 * name" (0, ENOENT, ESRCH, EBADF, EPERM, as getpwnam_r(3) lists them)
 * rather than a failure of the lookup.
 */
bool account_not_found(int e);

#endif
