/*
 * scenarios: integration scenarios that run under any server model
 * (issue 11: `model = events | prefork | process-per-connection |
 * thread-per-connection | thread-pool`).  Each lives in the suite that
 * has always run it under the default model (events) and takes the model
 * as a parameter here, so that check_modelrun.c runs the same code under
 * every model instead of a copy.  model NULL means events (no `model`
 * line is written).  Each is a whole test: it starts its daemon, asserts
 * (ending the test on failure, as a Check test does) and cleans up.
 *
 * What a model changes in a configuration (harness.h): h_conf_model adds
 * `model = X` (and `threads = N` for thread-pool, N being what one worker
 * holds at once, as max_connections is for the others); h_model_workers
 * gives prefork, which holds one connection a worker, enough workers.
 */
#ifndef ECHOD_TEST_SCENARIOS_H
#define ECHOD_TEST_SCENARIOS_H

/* check_service.c */
void service_interactive(const char *model);  /* lines before EOF */
void service_every_byte(const char *model);   /* 0..255, UTF-8 */
void service_large_stream(const char *model); /* 64 MiB, half-close */
void service_capacity(const char *model);     /* 1 a worker, queueing */
void service_idle_timeout(const char *model); /* idle goes, busy stays */
void service_non_reader(const char *model);   /* bounded memory */

/* check_supervision.c */
void supervision_killed_under_load(const char *model); /* none refused */
void supervision_stop_drains(const char *model); /* SIGTERM, one open */
void supervision_stop_deadline(const char *model); /* outstays it */
void supervision_heartbeat_full(const char *model); /* worker_timeout */

/* check_attack.c */
void attack_lifetime(const char *model);   /* max_connection_time */
void attack_exhaustion(const char *model); /* out of descriptors */
void attack_per_ip_release(const char *model); /* refused, then let in */

/* check_live.c: reload from one model to another, a connection open */
void live_reload_model(const char *from, const char *to);

/* check_proxylive.c: the PROXY protocol (issue 12) on a proxied listener */
void proxylive_headers(const char *model); /* each kind echoed after */
void proxylive_guard(const char *model);   /* untrusted, proxy_timeout */
void proxylive_per_ip(const char *model);  /* the header's source counts */
void proxylive_burst(const char *model);   /* one PROXY line a second */
void proxylive_flood(const char *model);   /* 2,000 bad, 200 valid */
void proxylive_scoreboard(const char *model); /* proxied, px-closed */

#endif
