/*
 * settings: defaults, then the file, then the command line.  The one
 * function that builds the running configuration, at start-up and on
 * reload alike.  Neither logs nor exits.
 */
#include <string.h>

#include "settings.h"

enum settings_result
settings_build(struct conf *c, const struct settings *s, char *err,
    size_t errlen)
{
	memset(c, 0, sizeof(*c));
	conf_defaults(c);
	if (s->config_path != NULL &&
	    conf_load(c, s->config_path, err, errlen) == -1)
		return SETTINGS_BAD_FILE;
	if ((s->cli_workers != NULL &&
	    conf_set_workers(c, s->cli_workers, err, errlen) == -1) ||
	    (s->ncli_listen > 0 && conf_set_listen(c, s->cli_listen,
	    s->ncli_listen, err, errlen) == -1))
		return SETTINGS_BAD_CLI;
	return SETTINGS_OK;
}

const char *
settings_warning(const struct conf *c)
{
	if (c->nproxy_listen > 0 && c->nproxy_trusted == 0)
		return "proxy_listen is set but proxy_trusted is empty: every "
		    "connection to it will be closed";
	return NULL;
}
