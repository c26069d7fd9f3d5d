/*
 * check_account: the one user and group lookup (account.c).
 *
 * Uses names every Linux system has: root (uid 0, gid 0) and nobody; the
 * names below must not exist.
 */
#include <check.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "account.h"
#include "harness.h"
#include "suites.h"

#define NO_USER "echod-no-such-user"
#define NO_GROUP "echod-no-such-group"

struct resolve_case {
	const char *user, *group;
	int rc;
	const char *want; /* the error, or NULL */
	int err;          /* errno on failure */
};

static const struct resolve_case resolve_cases[] = {
	{ "root", NULL, 0, NULL, 0 },
	{ "root", "", 0, NULL, 0 },
	{ "root", "root", 0, NULL, 0 },
	{ "nobody", "root", 0, NULL, 0 },
	{ NO_USER, NULL, -1, "user '" NO_USER "' does not exist", ENOENT },
	{ NO_USER, "root", -1, "user '" NO_USER "' does not exist", ENOENT },
	{ "root", NO_GROUP, -1, "group '" NO_GROUP "' does not exist",
	    ENOENT },
	{ "", NULL, -1, "the user name is empty", EINVAL },
	{ NULL, "root", -1, "the user name is empty", EINVAL },
	/* names only: an id is not a name */
	{ "0", NULL, -1, "user '0' does not exist", ENOENT },
	{ "root", "0", -1, "group '0' does not exist", ENOENT },
};

START_TEST(test_resolve)
{
	const struct resolve_case *rc = &resolve_cases[_i];
	uid_t uid = 4242;
	gid_t gid = 4242;
	char err[256] = "";

	errno = 0;
	ck_assert_int_eq(account_resolve(rc->user, rc->group, &uid, &gid, err,
	    sizeof(err)), rc->rc);
	if (rc->rc == 0) {
		ck_assert_str_eq(err, "");
		return;
	}
	ck_assert_str_eq(err, rc->want);
	ck_assert_int_eq(errno, rc->err);
	ck_assert_int_eq(uid, 4242); /* untouched */
	ck_assert_int_eq(gid, 4242);
}
END_TEST

/* The ids themselves: root is 0:0, nobody's group is its primary group. */
START_TEST(test_ids)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	char err[256];

	ck_assert_int_eq(account_resolve("root", NULL, &uid, &gid, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(uid, 0);
	ck_assert_int_eq(gid, 0);
	ck_assert_ptr_nonnull(pw = getpwnam("nobody"));
	ck_assert_int_eq(account_resolve("nobody", "", &uid, &gid, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(uid, pw->pw_uid);
	ck_assert_int_eq(gid, pw->pw_gid);
	ck_assert_int_eq(account_resolve("nobody", "root", &uid, &gid, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(uid, pw->pw_uid);
	ck_assert_int_eq(gid, 0);
	ck_assert_int_eq(account_user("nobody", &uid, &gid), 0);
	ck_assert_int_eq(gid, pw->pw_gid);
	ck_assert_int_eq(account_user(NO_USER, &uid, &gid), 1);
	ck_assert_int_eq(account_group("root", &gid), 0);
	ck_assert_int_eq(gid, 0);
	ck_assert_int_eq(account_group(NO_GROUP, &gid), 1);
}
END_TEST

struct not_found_case {
	int e;
	bool not_found;
};

static const struct not_found_case not_found_cases[] = {
	{ 0, true }, { ENOENT, true }, { ESRCH, true }, { EBADF, true },
	{ EPERM, true }, { EIO, false }, { ENOMEM, false }, { EMFILE, false },
	{ EAGAIN, false }, { ERANGE, false },
};

START_TEST(test_not_found)
{
	const struct not_found_case *nc = &not_found_cases[_i];

	ck_assert_msg(account_not_found(nc->e) == nc->not_found,
	    "errno %d (%s)", nc->e, strerror(nc->e));
}
END_TEST

START_TEST(test_small_err_buffer)
{
	uid_t uid;
	gid_t gid;
	char err[8];

	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(account_resolve(NO_USER, NULL, &uid, &gid, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "user 'e");
}
END_TEST

Suite *
account_suite(void)
{
	Suite *s = suite_create("account");
	TCase *tc = h_case(s, "lookup", 0, H_TESTS(test_ids,
	    test_small_err_buffer));

	tcase_add_loop_test(tc, test_resolve, 0, H_NELEM(resolve_cases));
	tcase_add_loop_test(tc, test_not_found, 0, H_NELEM(not_found_cases));
	return s;
}
