/*
 * suites: every Check suite the runner runs, one per module or scenario.
 * Each tests/check_<name>.c exports Suite *<name>_suite(void).
 */
#ifndef ECHOD_TEST_SUITES_H
#define ECHOD_TEST_SUITES_H

#include <check.h>

#define ECHOD_SUITES(X)                                                    \
	X(echo)                                                            \
	X(benchcpu)                                                        \
	X(helpers)                                                         \
	X(log)                                                             \
	X(conf)                                                            \
	X(conftext)                                                        \
	X(account)                                                         \
	X(climit)                                                          \
	X(probe)                                                           \
	X(notify)                                                          \
	X(listener)                                                        \
	X(pool)                                                            \
	X(reload)                                                          \
	X(conn)                                                            \
	X(service)                                                         \
	X(supervision)                                                     \
	X(logstall)                                                        \
	X(cli)                                                             \
	X(attack)                                                          \
	X(systemd)                                                         \
	X(live)                                                            \
	X(daemon)                                                          \
	X(startup)                                                         \
	X(sandbox)                                                         \
	X(worker)                                                          \
	X(client)                                                          \
	X(models_unit)                                                     \
	X(modelrun)                                                        \
	X(proxy)                                                           \
	X(cidr)                                                            \
	X(proxylive)                                                       \
	X(haproxy)                                                         \
	X(http)                                                            \
	X(metrics)                                                         \
	X(prometheus)

/*
 * Suites that take minutes: added by the runner only when ECHOD_STRESS is
 * set (make check-stress), so that make check stays fast.
 */
#define ECHOD_STRESS_SUITES(X) X(stress)

#define ECHOD_DECLARE_SUITE(name) Suite *name##_suite(void);
ECHOD_SUITES(ECHOD_DECLARE_SUITE)
ECHOD_STRESS_SUITES(ECHOD_DECLARE_SUITE)

#endif
