/*
 * proctitle: overwrite argv[] so ps(1) shows each process's role.
 *
 * As nginx and Postfix do: the strings of argv[] and environ lie end to end
 * in the process's initial stack; environ is moved to the heap so the whole
 * area can hold the new title.  PR_SET_NAME sets the short name top(1) and
 * ps -o comm show.  If anything here fails the title simply stays.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "proctitle.h"

extern char **environ;

static char *title_start;
static size_t title_len;
/*
 * Our copy of the environment.  glibc's setenv() (an upgrade's
 * ECHOD_UPGRADE) moves environ to an array of its own and leaves this
 * one behind without freeing it, as it did not allocate it: kept here,
 * it stays reachable instead of leaking.
 */
static char **own_environ;

void
proctitle_init(int argc, char **argv)
{
	char *end, **newenv;
	int i, n;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	for (n = 0; environ[n] != NULL; n++)
		;
	if ((newenv = calloc((size_t)n + 1, sizeof(char *))) == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		if ((newenv[i] = strdup(environ[i])) == NULL) {
			while (i > 0) /* keep the old environ */
				free(newenv[--i]);
			free(newenv);
			return;
		}
	}
	environ = own_environ = newenv;
	title_start = argv[0];
	title_len = (size_t)(end - argv[0]);
}

void
proctitle_set(const char *fmt, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	prctl(PR_SET_NAME, buf, 0, 0, 0);
	if (title_start == NULL || title_len < 2)
		return;
	memset(title_start, 0, title_len);
	snprintf(title_start, title_len, "%s", buf);
}
