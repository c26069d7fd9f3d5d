/*
 * fuzz: what the libFuzzer targets share.  CHECK is their assertion: it
 * names the target (FUZZ_TARGET, defined before this header), the file,
 * the line and the condition, then aborts so that libFuzzer keeps the
 * input as a crash.
 */
#ifndef ECHOD_FUZZ_H
#define ECHOD_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, FUZZ_TARGET ": %s:%d: %s: ",       \
			    __FILE__, __LINE__, #cond);                    \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
			abort();                                           \
		}                                                          \
	} while (0)

#endif
