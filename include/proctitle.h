/*
 * proctitle: the process title ps shows ("echod: master", "echod: worker 2").
 */
#ifndef ECHOD_PROCTITLE_H
#define ECHOD_PROCTITLE_H

/*
 * Call once from main(), after the options are parsed and every argv
 * string that is still needed has been copied: titles overwrite them.
 */
void proctitle_init(int argc, char **argv);
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
