/*
 * model: the lecture's server models behind one small interface.
 *
 * worker_main() sets a worker up and, for any model but events, hands it
 * to model_main(), which picks the model's ops from a table: what it
 * needs from the sandbox, what it starts before saying ready, and its
 * loop.  The master never knows which model runs.  One file per model:
 * model_prefork.c, model_process.c, model_thread.c, model_pool.c; the
 * waiting and the service they share is serve.c.  The decisions (may
 * the worker accept now, its capacity, which thread) are the pure
 * functions below.
 */
#ifndef ECHOD_MODEL_H
#define ECHOD_MODEL_H

#include <stddef.h>

#include "worker.h"

struct serve;

struct model_ops {
	int model;        /* enum conf_model */
	unsigned needs;   /* SANDBOX_NEED_* beyond the events worker's */
	int with_chld;    /* the signalfd takes SIGCHLD too */
	/* After the sandbox, before "ready"; -1: cannot serve. */
	int (*start)(struct serve *s, unsigned capacity);
	/* Accept and serve until the drain is over. */
	void (*run)(struct serve *s, unsigned capacity);
};

extern const struct model_ops model_prefork_ops, model_process_ops,
    model_thread_ops, model_pool_ops;

/*
 * A thread-per-connection thread's stack (see model_thread.c): the
 * service's deepest path is a log line (two 1 KiB buffers and
 * vsnprintf's few KiB); its data buffer is on the heap.  64 KiB leaves
 * ten times that, where glibc's default (RLIMIT_STACK, 8 MiB) would
 * reserve 64 GiB of address space for 8192 connections.
 */
#define MODEL_THREAD_STACK (64 * 1024)

/* Pure: how many connections one worker serves at once under model. */
unsigned model_capacity(int model, int max_conns, int threads);

/* Pure: may the worker accept now, with busy of capacity in use? */
int model_can_accept(unsigned busy, unsigned capacity, int paused);

/* Pure: the first free thread of n (busy[i] != 0: serving), or -1. */
int model_pick_thread(const unsigned char *busy, unsigned n);

/* Pure: the ops of model (enum conf_model); NULL for events/unknown. */
const struct model_ops *model_ops_for(int model);

/* Run a set-up worker under its configured model.  Never returns. */
void model_main(const struct worker_args *a) __attribute__((noreturn));

#endif
