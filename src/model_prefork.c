/*
 * model_prefork: the lecture's pool of processes that each loop on
 * accept().  The worker takes one connection and serves it until it
 * ends, then takes the next: a pool of `workers` processes serves that
 * many clients at once, and the rest wait in the accept queue.  Its only
 * loop is the connection's, so serve_conn beats and reads the signals
 * (own_loop).  A crash takes down the one connection it was serving.
 */
#include <stdlib.h>
#include <unistd.h>

#include "model.h"
#include "sandbox.h"
#include "serve.h"

static void
prefork_run(struct serve *s, unsigned capacity)
{
	struct serve_client cl;
	struct bufpool bp = { .nfree = 0 };
	unsigned char *buf;

	(void)capacity;
	s->own_loop = 1;
	if ((buf = malloc(CONN_BUFSIZE)) == NULL)
		return;
	while (!serve_done(s, 0)) {
		if (serve_accept(s, 1, &cl) != 1 || serve_take(s, &cl) == -1)
			continue;
		serve_conn(s, &cl, buf, &bp);
		serve_untake(s, cl.key);
	}
	bufpool_drain(&bp);
	free(buf);
}

const struct model_ops model_prefork_ops = {
	.model = CONF_MODEL_PREFORK,
	.needs = SANDBOX_NEED_POLL,
	.run = prefork_run,
};
