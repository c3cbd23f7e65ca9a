/*
 * An orchestration's first failure, shared by both runtimes: once a submit
 * failed, every later call returns that failure and its message stands
 * (a cleanup or a later check must not overwrite the cause).
 */
#ifndef SIMPLER_RUNTIME_FIRST_FAILURE_H
#define SIMPLER_RUNTIME_FIRST_FAILURE_H

/* Record code with the message, unless *failed holds an earlier failure.
 * Returns *failed. */
int first_failure(int *failed, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same for rc whose message is already the thread's error. */
int first_failure_keep(int *failed, int rc);

#endif
