/*
 * runner: the one Check runner.  Runs every suite listed in suites.h; the
 * exit status is the number of failed tests (0 when all pass).
 * CK_RUN_SUITE / CK_RUN_CASE select a subset, as Check documents.  The
 * stress suites (minutes, not seconds) are added only when ECHOD_STRESS
 * is set to something other than "" or "0": make check-stress does.
 */
#include <stdlib.h>
#include <string.h>

#include "suites.h"

static int
stress_wanted(void)
{
	const char *v = getenv("ECHOD_STRESS");

	return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(NULL);
#define ECHOD_ADD_SUITE(name) srunner_add_suite(sr, name##_suite());
	ECHOD_SUITES(ECHOD_ADD_SUITE)
	if (stress_wanted()) {
		ECHOD_STRESS_SUITES(ECHOD_ADD_SUITE)
	}
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
