/*
 * settings: the configuration echod runs with, built in one place: the
 * built-in defaults, then the file, then the command line's overrides.
 * main.c calls it at start-up and the master on every reload, so both
 * always agree.  Reports errors in the caller's buffer; never exits.
 */
#ifndef ECHOD_SETTINGS_H
#define ECHOD_SETTINGS_H

#include <stddef.h>

#include "conf.h"

struct settings {
	const char *config_path; /* NULL: the built-in defaults */
	char *const *cli_listen; /* -l, replaces the file's listen */
	size_t ncli_listen;
	const char *cli_workers; /* -w; NULL if not given */
};

enum settings_result {
	SETTINGS_OK = 0,
	SETTINGS_BAD_FILE = -1, /* the file is wrong: err says where */
	SETTINGS_BAD_CLI = -2,  /* a command-line override is wrong */
};

/*
 * Fill c (anything: it is set to the defaults first) from s.  On an
 * error c still holds a valid configuration for conf_free().
 */
enum settings_result settings_build(struct conf *c, const struct settings *s,
    char *err, size_t errlen);

/*
 * What -t and the start-up log warn about in a valid c (one line), or
 * NULL: proxied listeners that nobody may use.
 */
const char *settings_warning(const struct conf *c);

#endif
