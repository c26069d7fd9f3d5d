/*
 * model: the table of models, their pure decisions, and the run every
 * blocking model shares (set-up, sandbox, ready, loop, exit).  Nothing
 * model-specific here: that is in model_<name>.c.
 */
#include <malloc.h>
#include <stdlib.h>

#include "exitcodes.h"
#include "log.h"
#include "model.h"
#include "sandbox.h"
#include "serve.h"

unsigned
model_capacity(int model, int max_conns, int threads)
{
	switch (model) {
	case CONF_MODEL_PREFORK:
		return 1;
	case CONF_MODEL_THREAD_POOL:
		return threads > 0 ? (unsigned)threads : 1;
	default:
		return max_conns > 0 ? (unsigned)max_conns : 1;
	}
}

int
model_can_accept(unsigned busy, unsigned capacity, int paused)
{
	return !paused && busy < capacity;
}

int
model_pick_thread(const unsigned char *busy, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (!busy[i])
			return (int)i;
	return -1;
}

const struct model_ops *
model_ops_for(int model)
{
	switch (model) {
	case CONF_MODEL_PREFORK:
		return &model_prefork_ops;
	case CONF_MODEL_PROCESS:
		return &model_process_ops;
	case CONF_MODEL_THREAD:
		return &model_thread_ops;
	case CONF_MODEL_THREAD_POOL:
		return &model_pool_ops;
	default:
		return NULL;
	}
}

void
model_main(const struct worker_args *a)
{
	const struct model_ops *ops = model_ops_for(a->conf->model);
	unsigned cap = model_capacity(a->conf->model, a->max_conns,
	    a->conf->threads);
	static struct serve s; /* the threads see it until exit() */

	if (ops == NULL)
		fatalx(ECHOD_EXIT_WORKER_FATAL, "model %d is not a model",
		    a->conf->model);
	/*
	 * One malloc arena: a thread's first malloc would otherwise make
	 * its own, and glibc counts the CPUs (opening files) to size them,
	 * which the sandbox forbids.
	 */
	(void)mallopt(M_ARENA_MAX, 1);
	if (serve_init(&s, a, ops->with_chld) == -1)
		fatal(ECHOD_EXIT_WORKER_FATAL, "cannot set up the %s model",
		    conf_model_name(ops->model));
	worker_enter_sandbox(a, ops->needs);
	if (ops->start != NULL && ops->start(&s, cap) == -1)
		fatal(ECHOD_EXIT_WORKER_FATAL, "cannot start the %s model",
		    conf_model_name(ops->model));
	log_debug("ready: up to %u connections (model %s)", cap,
	    conf_model_name(ops->model));
	serve_tick(&s);
	worker_report_ready(a);
	ops->run(&s, cap);
	log_debug("exiting: served %llu connections",
	    (unsigned long long)sb_delta(&s.sb->conns_served,
	    &s.sb->base_served));
	exit(ECHOD_EXIT_OK);
}
