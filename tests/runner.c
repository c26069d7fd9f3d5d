/*
 * runner: the one Check runner.  Runs every suite listed in suites.h; the
 * exit status is the number of failed tests (0 when all pass).
 * CK_RUN_SUITE / CK_RUN_CASE select a subset, as Check documents.
 */
#include <stdlib.h>

#include "suites.h"

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(NULL);
#define ECHOD_ADD_SUITE(name) srunner_add_suite(sr, name##_suite());
	ECHOD_SUITES(ECHOD_ADD_SUITE)
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
