/*
 * check_conftext: the text pass in front of libconfuse (conftext.c).
 *
 * Table tests of its pure part, conftext_check() on text in memory: what
 * it refuses (and on which line), how it blanks comments, where it sees a
 * string end (as libconfuse's scanner does, "${...}" included), the empty
 * list it finds, and the size "${VAR}" expansion gives.  conf's suite
 * covers the same through files and conf_load().
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conftext.h"
#include "harness.h"
#include "suites.h"

/* 10 and 50 bytes; ECHOD_CT_EMPTY is set but empty, ECHOD_CT_NONE unset. */
#define TEN "0123456789"
#define FIFTY TEN TEN TEN TEN TEN

static void
set_env(void)
{
	ck_assert_int_eq(setenv("ECHOD_CT_TEN", TEN, 1), 0);
	ck_assert_int_eq(setenv("ECHOD_CT_FIFTY", FIFTY, 1), 0);
	ck_assert_int_eq(setenv("ECHOD_CT_EMPTY", "", 1), 0);
	ck_assert_int_eq(unsetenv("ECHOD_CT_NONE"), 0);
}

struct check_case {
	const char *text;
	size_t len;       /* 0: text is a string */
	int line;         /* 0: accepted */
	const char *want; /* accepted: the blanked text; else in the message */
};

static const struct check_case check_cases[] = {
	/* comments blanked, newlines and strings kept */
	{ "a = 1 # c\nb = 2\n", 0, 0, "a = 1    \nb = 2\n" },
	{ "a = 1 // c\n", 0, 0, "a = 1     \n" },
	{ "a /* x\ny */ = 1\n", 0, 0, "a     \n     = 1\n" },
	{ "p = \"#x // y /* z\"\n", 0, 0, "p = \"#x // y /* z\"\n" },
	{ "p = 'a#b'\n", 0, 0, "p = 'a#b'\n" },
	{ "p = \"a\\\"#b\"\n", 0, 0, "p = \"a\\\"#b\"\n" },
	/* refusals */
	{ "a = 1\n\0b", 9, 2, "NUL byte (a binary file?); allowed: text" },
	{ "a = 1\np = \"x\n", 0, 2, "syntax error: string never closed" },
	{ "a = 1\np = 'x\n", 0, 2, "syntax error: string never closed" },
	{ "\n\n/* x", 0, 3, "syntax error: comment never closed" },
	{ "p = \"a\\0b\"\n", 0, 1, "'\\0' in a string is a NUL byte" },
	{ "p = \"a\\x00\"\n", 0, 1, "'\\x00' in a string is a NUL byte" },
	{ "\ninclude(\"a\" \"b\")\n", 0, 2, "syntax error: malformed call" },
	{ "include(\n", 0, 1, "syntax error: malformed call" },
	/* escapes that make no NUL, and a NUL escape in a '' string */
	{ "p = \"\\01x\\x01\\\\0\"\n", 0, 0, NULL },
	{ "p = '\\0'\n", 0, 0, NULL },
	/*
	 * libconfuse reads "${" in a "" string up to the next '}', across
	 * the closing quote: the string goes on to the next '"' (here
	 * never), and the call is not what it looked like (the fuzzer's
	 * leak, defect 20).
	 */
	{ "include(\"b${X:-a.conf\")\nlisten = { \"*:1}\" }\n", 0, 1,
	    "syntax error: malformed call" },
	{ "include(\"b${X:-a.conf\")\nlisten = { \"*:1\" }\n", 0, 1,
	    "syntax error: string never closed" },
	{ "p = \"${X\" # }\n", 0, 1, "syntax error: string never closed" },
	{ "p = \"${X\" # }\"\n", 0, 0, "p = \"${X\" # }\"\n" },
	/* no '}' anywhere: '$' is a plain character */
	{ "p = \"${X\" # c\n", 0, 0, "p = \"${X\"    \n" },
	/* a NUL escape inside "${...}" is part of a name, not a NUL */
	{ "p = \"${ECHOD_CT_NONE:-\\0}\"\n", 0, 0, NULL },
	/* a bare "${" where a token starts, up to its '}' */
	{ "p = ${A # }\n", 0, 0, "p = ${A # }\n" },
	{ "p = x${A # }\n", 0, 0, "p = x${A    \n" },
};

START_TEST(test_check)
{
	const struct check_case *cc = &check_cases[_i];
	size_t len = cc->len != 0 ? cc->len : strlen(cc->text);
	char *buf, why[256] = "";
	int line = -1, rc;

	set_env();
	ck_assert_ptr_nonnull(buf = calloc(1, len + 2));
	memcpy(buf, cc->text, len);
	rc = conftext_check(buf, len, why, sizeof(why), &line);
	if (cc->line == 0) {
		ck_assert_msg(rc == 0, "case %d refused: %s", _i, why);
		if (cc->want != NULL)
			ck_assert_str_eq(buf, cc->want);
	} else {
		ck_assert_msg(rc == -1, "case %d accepted", _i);
		ck_assert_int_eq(line, cc->line);
		ck_assert_msg(strstr(why, cc->want) != NULL,
		    "case %d: '%s' does not contain '%s'", _i, why, cc->want);
	}
	free(buf);
}
END_TEST

struct list_case {
	const char *text;
	int line; /* where "listen = {}" is; 0: none */
};

static const struct list_case list_cases[] = {
	{ "listen = {}\n", 1 },
	{ "\nlisten += {\n}\n", 2 },
	{ "listen = { \"*:7\" }\n", 0 },
	{ "xlisten = {}\n", 0 },
	/* defect 4: inside a string it is a value, not an option */
	{ "pidfile = \"/run/x listen = {}\"\n", 0 },
	{ "pidfile = '/run/x listen = {}'\n", 0 },
	{ "pidfile = \"/run/x\"\nlisten = {}\n", 2 },
	{ "p = \"${A\" listen = {}}\"\n", 0 },
};

START_TEST(test_empty_list)
{
	const struct list_case *lc = &list_cases[_i];
	const char *p = conftext_empty_list(lc->text, "listen");

	if (lc->line == 0)
		ck_assert_msg(p == NULL, "case %d: found at '%s'", _i, p);
	else {
		ck_assert_msg(p != NULL, "case %d: not found", _i);
		ck_assert_int_eq(conftext_line(lc->text, p), lc->line);
	}
}
END_TEST

struct size_case {
	const char *text;
	size_t size; /* expanded; (size_t)-1: past the cap of 40 */
	const char *at; /* the reference that passed the cap */
};

static const struct size_case size_cases[] = {
	{ "a = b\n", 6, NULL },
	{ "a = ${ECHOD_CT_TEN}\n", 15, NULL },
	{ "a = \"${ECHOD_CT_TEN}x\"\n", 18, NULL },
	{ "a = '${ECHOD_CT_TEN}'\n", 22, NULL },          /* literal */
	{ "a = \"\\${ECHOD_CT_TEN}\"\n", 23, NULL },      /* escaped */
	{ "a = x${ECHOD_CT_TEN}\n", 21, NULL },           /* in a word */
	{ "a = ${ECHOD_CT_NONE:-abc}\n", 8, NULL },
	{ "a = ${ECHOD_CT_EMPTY:-abc}\n", 5, NULL },      /* set: "" */
	{ "a = ${ECHOD_CT_NONE}\n", 5, NULL },
	{ "a = \"${ECHOD_CT_TEN}${ECHOD_CT_FIFTY}\"\n", (size_t)-1,
	    "${ECHOD_CT_FIFTY}\"" },
};

START_TEST(test_expanded_size)
{
	const struct size_case *sc = &size_cases[_i];
	const char *at = NULL;
	size_t n;

	set_env();
	n = conftext_expanded_size(sc->text, strlen(sc->text), 40, &at);
	if (sc->size == (size_t)-1) {
		ck_assert_msg(n > 40, "case %d: %zu", _i, n);
		ck_assert_ptr_nonnull(at);
		ck_assert_msg(strncmp(at, sc->at, strlen(sc->at)) == 0 &&
		    strlen(at) == strlen(sc->at) + 1, "case %d: at '%s'", _i,
		    at);
	} else
		ck_assert_uint_eq(n, sc->size);
}
END_TEST

/* Defect 14: 3,000 references to a 100 KB variable took 296 MB. */
START_TEST(test_expansion_bound)
{
	char *big, *text, why[256];
	size_t i, len;
	int line;

	ck_assert_ptr_nonnull(big = malloc(100 * 1024 + 1));
	memset(big, 'a', 100 * 1024);
	big[100 * 1024] = '\0';
	ck_assert_int_eq(setenv("ECHOD_CT_BIG", big, 1), 0);
	free(big);
	ck_assert_ptr_nonnull(text = malloc(3000 * 16 + 32));
	len = (size_t)sprintf(text, "\npidfile = \"/run/");
	for (i = 0; i < 3000; i++)
		len += (size_t)sprintf(text + len, "${ECHOD_CT_BIG}");
	len += (size_t)sprintf(text + len, "\"\n");
	ck_assert_int_eq(conftext_check(text, len, why, sizeof(why), &line),
	    -1);
	ck_assert_int_eq(line, 2);
	ck_assert_str_eq(why, "'${ECHOD_CT_BIG}' expands the file past "
	    "1048576 bytes; allowed: up to 1048576 bytes with every ${VAR} "
	    "replaced");
	free(text);
}
END_TEST

Suite *
conftext_suite(void)
{
	Suite *s = suite_create("conftext");
	TCase *tc = h_case(s, "text", 0, H_TESTS(test_expansion_bound));

	tcase_add_loop_test(tc, test_check, 0, H_NELEM(check_cases));
	tcase_add_loop_test(tc, test_empty_list, 0, H_NELEM(list_cases));
	tcase_add_loop_test(tc, test_expanded_size, 0, H_NELEM(size_cases));
	return s;
}
