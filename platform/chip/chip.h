/*
 * The chip engine: the AICPU and AICore of one device as threads, shared by
 * both platforms. sim runs it inside the calling process; the onboard
 * device process (simpler-device) runs it behind the driver protocol.
 *
 * Threads are created on first use and kept for the life of the chip,
 * sleeping in a futex while idle. Core threads run an AICore executor's
 * main loop; AICPU threads call the launch's AICPU runtime entry once per
 * launch. One launch at a time: the caller serialises.
 */
#ifndef SIMPLER_PLATFORM_CHIP_H
#define SIMPLER_PLATFORM_CHIP_H

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include "common/device_abi.h"

typedef struct chip chip;

typedef struct chip_core {
    chip *owner;
    uint32_t idx;
    int running;                    /* thread started and not yet joined */
    pthread_t thread;
} chip_core;

typedef struct chip_aicpu {
    chip *owner;
    uint32_t idx;
    pthread_t thread;
    simpler_event go;
    int avoids;                     /* the CPU its affinity leaves out, or -1: none */
} chip_aicpu;

/* Who waits for a launch, and what it does while it waits. */
typedef struct chip_waiter {
    /* About once a second, with whether any block finished since the
     * last call (the device process sends it to the host as a heartbeat). */
    void (*progress)(void *arg, int progressed);
    /* About every CHIP_CANCEL_POLL_NS: non-zero cancels the launch. */
    int (*poll)(void *arg);
    /* Before each poll: the launch's tasks finished and known so far. */
    void (*counts)(void *arg, uint64_t tasks_done, uint64_t tasks_submitted);
    void *arg;
    int poll_at_once;               /* and once as soon as the launch is started */
} chip_waiter;

#define CHIP_CANCEL_POLL_NS 20000000ull

struct chip {
    const char *name;               /* for messages: "sim", "simpler-device 0" */
    cpu_set_t cpus;                 /* the CPUs the process may use, when the chip was made */
    simpler_aicore_main_fn aicore_main;     /* what the core threads run */
    simpler_aicpu_main_fn aicpu_main;       /* the current launch's runtime */

    simpler_mailbox *mailboxes;     /* [SIMPLER_MAX_CORES] */
    chip_core cores[SIMPLER_MAX_CORES];
    uint32_t num_core_threads;
    chip_aicpu aicpu[SIMPLER_MAX_AICPU_THREADS + 1];
    uint32_t num_aicpu_threads;
    _Atomic uint32_t stopping;

    simpler_launch launch;
    uint32_t launch_seq[SIMPLER_MAX_CORES]; /* each core's door.seq as the launch began */
    _Atomic uint32_t running;       /* AICPU threads still in the launch */
    simpler_event done;

    uint64_t core_resets;
    _Atomic int lost;               /* threads may still run device code: never unload it */
};

int chip_init(chip *c, const char *name);

/* Stop every thread. Returns non-zero when some thread would not stop (a
 * lost chip): the caller must then leave GM and all device code mapped. */
int chip_close(chip *c);

/* Make the core threads run fn. Cores running another executor are
 * stopped first and restarted on the next launch. */
int chip_set_executor(chip *c, simpler_aicore_main_fn fn);

/*
 * Run one launch to its end. Timeouts, in order: the AICPU runtime's
 * scheduler watchdog (p->scheduler_timeout_ms without progress) fails the
 * launch and the cores are brought back to idle; if the AICPU threads do
 * not stop within margin_ns more (no progress at all), that is the op
 * execution timeout and the chip is lost. A poll that asks to stop fails
 * the launch with SIMPLER_E_INTERRUPTED the way the watchdog fails it.
 * w and its functions may be NULL.
 */
int chip_launch(chip *c, simpler_aicpu_main_fn aicpu_main, const simpler_launch_params *p,
                uint64_t margin_ns, const chip_waiter *w);

static inline int chip_is_lost(chip *c) { return atomic_load(&c->lost); }

/* Whether the calling thread is a core or AICPU thread of a chip (it runs
 * kernel or runtime code). */
int chip_on_device_thread(void);

/* "core 1 was running task 0 (func 9, kernel 'hang')" for every core in a
 * kernel now, "; "-separated, for a report written as the process dies:
 * no lock, no allocation. */
void chip_running_report(const chip *c, char *out, size_t size);

/* Fill the launch's failure report (its params' failure_addr, if set)
 * from the mailboxes (failure_report.c): before the cores are reset, or
 * from a dying process's signal handler (no lock, no allocation). */
void chip_failure_report(const chip *c, int status);

/* "SIGSEGV (invalid memory access)" and the like, for the crash line of a
 * process that runs a chip. Async-signal-safe. */
const char *chip_signal_name(int sig);

/* Send the signals a crashing kernel raises (SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE, SIGABRT) to handler, once each (it is reset as it runs, so a
 * handler that re-raises dies of the signal). */
void chip_catch_fatal_signals(void (*handler)(int));

#endif
