/*
 * The chip engine (chip.h): AICPU and AICore threads, the mailbox
 * handshake's device side lives in the executor and the AICPU runtime; this
 * file starts, wakes, watches and stops the threads.
 */
#include "chip.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chip/core_pinning.h"
#include "chip/kernel_set.h"
#include "common/error.h"
#include "simpler/simpler.h"

/* A failed run's cores get this long to finish before they are stopped. */
#define CHIP_CORE_GRACE_NS 200000000ull
/* How often a waiting launch looks at progress. */
#define CHIP_POLL_NS 1000000000ull
/* How long closing a lost chip waits for each of its threads. */
#define CHIP_LOST_JOIN_NS 200000000ull
/* How long AICPU threads have to stop after an interrupt. */
#define CHIP_CANCEL_GRACE_NS 150000000ull
/* How long a cancelled core has to exit. */
#define CHIP_CANCEL_JOIN_NS 2000000000ull

static _Thread_local int t_device_thread;

int chip_on_device_thread(void) { return t_device_thread; }

static void *core_thread(void *arg)
{
    t_device_thread = 1;
    chip_core *k = arg;
    k->owner->aicore_main(&k->owner->mailboxes[k->idx]);
    return NULL;
}

/* "simpler-core3", "simpler-aicpu0": what top -H and gdb show. */
static void name_thread(pthread_t thread, const char *what, uint32_t i)
{
    char name[16];
    snprintf(name, sizeof name, "simpler-%s%u", what, i);
    pthread_setname_np(thread, name);
}

static int core_cpu(const chip *c, uint32_t i) { return chip_core_cpu(&c->cpus, i); }

static void pin_core(chip *c, uint32_t i) { chip_pin_core(c->cores[i].thread, &c->mailboxes[i], core_cpu(c, i)); }

/*
 * A scheduler thread stays off the CPU of the first AIV of its first
 * cluster: that core takes a lone stream of work (a chain, a run of one
 * task), as schedulers fill idle cores in order. Sharing that CPU, the two
 * would take turns for every task: measured 1.2-2.3 ms against 0.34 ms for
 * a chain of 1,000 empty tasks, until the kernel's load balancer, which
 * keeps a busy thread where its cache is warm, moved the scheduler on. Other
 * AICPU threads (an orchestrator) may run anywhere. Only a change of role
 * costs a system call.
 */
static void place_aicpu(chip *c, uint32_t t, int scheduler)
{
    chip_aicpu *a = &c->aicpu[t];
    int avoid = scheduler ? core_cpu(c, t * SIMPLER_CORES_PER_CLUSTER + 1) : -1;
    if (avoid == a->avoids)
        return;
    cpu_set_t allowed = c->cpus;
    if (avoid >= 0)
        CPU_CLR(avoid, &allowed);
    if (pthread_setaffinity_np(a->thread, sizeof allowed, &allowed) == 0)
        a->avoids = avoid;
}

static int start_core(chip *c, uint32_t i)
{
    memset(&c->mailboxes[i], 0, sizeof c->mailboxes[i]);
    c->mailboxes[i].core = i;
    c->cores[i].owner = c;
    c->cores[i].idx = i;
    int e = pthread_create(&c->cores[i].thread, NULL, core_thread, &c->cores[i]);
    if (e)
        return simpler_fail(SIMPLER_E_SYSTEM, "%s: cannot start core thread %u: %s", c->name, i, strerror(e));
    c->cores[i].running = 1;
    name_thread(c->cores[i].thread, "core", i);
    pin_core(c, i);
    return SIMPLER_OK;
}

static void *aicpu_thread(void *arg)
{
    t_device_thread = 1;
    chip_aicpu *a = arg;
    chip *c = a->owner;
    uint32_t seen = 0;
    for (;;) {
        /* Runs come in bursts: a thread that just ran one backs off
         * (pause, then yield) before it sleeps, so the next run finds it
         * awake instead of paying a futex wake (~38 us here). */
        simpler_backoff backoff = {0};
        while (atomic_load_explicit(&a->go.seq, memory_order_acquire) == seen && !atomic_load(&c->stopping) &&
               !simpler_backoff_step(&backoff))
            ;
        uint32_t seq = simpler_event_prepare(&a->go);
        if (seq == seen && !atomic_load(&c->stopping)) {
            simpler_event_sleep(&a->go, seq, 0);
            continue;
        }
        simpler_event_cancel(&a->go);
        seen = seq;
        if (atomic_load(&c->stopping))
            return NULL;
        c->aicpu_main(&c->launch, a->idx);
        if (atomic_fetch_sub(&c->running, 1) == 1)
            simpler_event_signal(&c->done);
    }
}

static int ensure_threads(chip *c, uint32_t cores, uint32_t aicpus)
{
    int rc;
    while (c->num_core_threads < cores) {
        if ((rc = start_core(c, c->num_core_threads)))
            return rc;
        c->num_core_threads++;
    }
    while (c->num_aicpu_threads < aicpus) {
        chip_aicpu *a = &c->aicpu[c->num_aicpu_threads];
        a->owner = c;
        a->idx = c->num_aicpu_threads;
        a->avoids = -1;
        int e = pthread_create(&a->thread, NULL, aicpu_thread, a);
        if (e)
            return simpler_fail(SIMPLER_E_SYSTEM, "%s: cannot start AICPU thread: %s", c->name, strerror(e));
        name_thread(a->thread, "aicpu", a->idx);
        c->num_aicpu_threads++;
    }
    return SIMPLER_OK;
}

int chip_init(chip *c, const char *name)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    if (sched_getaffinity(0, sizeof c->cpus, &c->cpus) != 0)
        CPU_ZERO(&c->cpus); /* unknown: nothing is pinned */
    c->mailboxes = aligned_alloc(64, sizeof(simpler_mailbox) * SIMPLER_MAX_CORES);
    if (!c->mailboxes)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "%s: out of host memory", name);
    return SIMPLER_OK;
}

/* Stop and join the core threads (all of them idle unless the chip is
 * lost). Returns how many would not stop. */
static int stop_cores(chip *c, int lost)
{
    int stuck = 0;
    for (uint32_t i = 0; i < c->num_core_threads; i++) {
        atomic_store(&c->mailboxes[i].exit, 1);
        simpler_event_signal(&c->mailboxes[i].door);
    }
    for (uint32_t i = 0; i < c->num_core_threads; i++) {
        if (!c->cores[i].running)
            continue;
        if (!lost)
            pthread_join(c->cores[i].thread, NULL);
        else if (simpler_join_within(c->cores[i].thread, CHIP_LOST_JOIN_NS) != 0 && ++stuck)
            pthread_detach(c->cores[i].thread);
        c->cores[i].running = 0;
    }
    c->num_core_threads = 0;
    return stuck;
}

/*
 * A lost chip may have threads stuck in a kernel: they get a moment to
 * notice, and the ones that do not stop are detached; everything they
 * might touch (the chip, GM, the executor and kernel code) is then left in
 * place on purpose. A small leak is the price of never unmapping code that
 * a thread is running.
 */
int chip_close(chip *c)
{
    int lost = atomic_load(&c->lost), stuck = 0;
    atomic_store(&c->stopping, 1);
    for (uint32_t i = 0; i < c->num_aicpu_threads; i++) {
        atomic_store(&c->launch.abort, 1);
        simpler_event_signal(&c->aicpu[i].go);
        simpler_event_signal(&c->launch.thread_events[i]);
        if (!lost)
            pthread_join(c->aicpu[i].thread, NULL);
        else if (simpler_join_within(c->aicpu[i].thread, CHIP_LOST_JOIN_NS) != 0 && ++stuck)
            pthread_detach(c->aicpu[i].thread);
    }
    stuck += stop_cores(c, lost);
    if (stuck)
        return stuck;
    free(c->mailboxes);
    c->mailboxes = NULL;
    return 0;
}

int chip_set_executor(chip *c, simpler_aicore_main_fn fn)
{
    if (c->aicore_main == fn)
        return SIMPLER_OK;
    if (atomic_load(&c->lost))
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "%s: the chip is lost", c->name);
    stop_cores(c, 0);
    c->aicore_main = fn;
    return SIMPLER_OK;
}

/* Bring every core of the last launch back to idle: wait a little for
 * running kernels, then stop the ones that will not finish and start fresh
 * threads in their place. */
static int recover_cores(chip *c, uint32_t num_cores)
{
    uint64_t deadline = simpler_now_ns() + CHIP_CORE_GRACE_NS;
    for (uint32_t i = 0; i < num_cores; i++) {
        simpler_mailbox *mb = &c->mailboxes[i];
        while (atomic_load(&mb->finished) != atomic_load(&mb->door.seq) && simpler_now_ns() < deadline)
            sched_yield();
        if (atomic_load(&mb->finished) == atomic_load(&mb->door.seq))
            continue;
        /* In a kernel the cancel acts at once; if the kernel has just
         * returned, the ring wakes the core to its next cancellation
         * point at the top of its loop. */
        pthread_cancel(c->cores[i].thread);
        simpler_event_signal(&mb->door);
        if (simpler_join_within(c->cores[i].thread, CHIP_CANCEL_JOIN_NS) != 0) {
            atomic_store(&c->lost, 1);
            return simpler_fail(SIMPLER_E_DEVICE_LOST,
                                "%s: core %u could not be stopped after a failed run (its kernel blocks "
                                "cancellation?); the device is unusable and will be reset", c->name, i);
        }
        c->cores[i].running = 0;
        c->core_resets++;
        int rc = start_core(c, i);
        if (rc) {
            atomic_store(&c->lost, 1);
            return simpler_fail_prefix(SIMPLER_E_DEVICE_LOST, "%s: restarting core %u", c->name, i);
        }
    }
    return SIMPLER_OK;
}

/* Fail the launch as the AICPU runtime's watchdog does: the first failure
 * wins the status, every AICPU thread stops, and the cores are reset once
 * they have. */
static void cancel_launch(simpler_launch *L, int code, const char *message)
{
    int32_t expected = 0;
    if (atomic_compare_exchange_strong(&L->status, &expected, code))
        snprintf(L->message, sizeof L->message, "%s", message);
    atomic_store_explicit(&L->abort, 1, memory_order_release);
    for (uint32_t t = 0; t < L->p.aicpu_thread_num + L->p.extra_threads; t++)
        simpler_event_signal(&L->thread_events[t]);
}

int chip_launch(chip *c, simpler_aicpu_main_fn aicpu_main, const simpler_launch_params *p,
                uint64_t margin_ns, const chip_waiter *w)
{
    if (atomic_load(&c->lost))
        return simpler_fail(SIMPLER_E_DEVICE_LOST, "%s: the device is unusable after an earlier failure; "
                            "create a new worker", c->name);
    if (!aicpu_main || !c->aicore_main)
        return simpler_fail(SIMPLER_E_STATE, "%s: no AICPU runtime or AICore executor loaded", c->name);
    if (p->block_dim == 0 || p->block_dim > SIMPLER_MAX_CLUSTERS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "block_dim %u out of range 1..%d", p->block_dim,
                            SIMPLER_MAX_CLUSTERS);
    if (p->aicpu_thread_num == 0 || p->aicpu_thread_num > SIMPLER_MAX_AICPU_THREADS)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "aicpu_thread_num %u out of range 1..%d",
                            p->aicpu_thread_num, SIMPLER_MAX_AICPU_THREADS);
    if (p->extra_threads > 1)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "%s: at most one extra AICPU thread", c->name);
    uint32_t cores = p->block_dim * SIMPLER_CORES_PER_CLUSTER;
    simpler_launch *L = &c->launch;
    L->p = *p;
    /* A scheduler thread owns whole clusters (sched_loop.c); one with no
     * cluster of its own would only watch. */
    if (L->p.aicpu_thread_num > p->block_dim)
        L->p.aicpu_thread_num = p->block_dim;
    uint32_t threads = L->p.aicpu_thread_num + p->extra_threads;
    int rc = ensure_threads(c, cores, threads);
    if (rc)
        return rc;
    c->aicpu_main = aicpu_main;
    L->num_cores = cores;
    L->mailboxes = c->mailboxes;
    L->trace = (simpler_trace *)(uintptr_t)p->trace_addr;
    atomic_store(&L->status, 0);
    atomic_store(&L->abort, 0);
    atomic_store(&L->tasks_completed, 0);
    atomic_store(&L->blocks_completed, 0);
    L->message[0] = '\0';
    atomic_store(&L->tasks_submitted, 0);
    for (uint32_t i = 0; i < cores; i++)
        c->launch_seq[i] = atomic_load(&c->mailboxes[i].door.seq);
    if (p->failure_addr)    /* an earlier failure's report is not this launch's */
        ((simpler_failure_report *)(uintptr_t)p->failure_addr)->magic = 0;
    atomic_store(&c->running, threads);
    for (uint32_t t = 0; t < threads; t++) {
        place_aicpu(c, t, t < L->p.aicpu_thread_num);
        simpler_event_signal(&c->aicpu[t].go);
    }

    /* The op deadline follows progress: it moves whenever a task
     * finishes, so only a scheduler that stopped counting (and whose own
     * watchdog did not fire) is declared lost. */
    uint64_t limit = (uint64_t)p->scheduler_timeout_ms * 1000000ull + margin_ns;
    uint64_t seen_done = 0, now = simpler_now_ns(), deadline = now + limit, next_report = now + CHIP_POLL_NS;
    uint64_t next_poll = w && w->poll ? now + (w->poll_at_once ? 0 : CHIP_CANCEL_POLL_NS) : UINT64_MAX;
    int progressed = 0;
    /* A short run is over before a sleeping host thread would even be
     * woken: back off first, then sleep with the deadlines (unless the
     * waiter wants its poll now). */
    simpler_backoff backoff = {0};
    while (next_poll > now && atomic_load(&c->running) && !simpler_backoff_step(&backoff))
        ;
    for (;;) {
        uint32_t seq = simpler_event_prepare(&c->done);
        if (atomic_load(&c->running) == 0) {
            simpler_event_cancel(&c->done);
            break;
        }
        now = simpler_now_ns();
        uint64_t done = atomic_load(&L->blocks_completed) + atomic_load(&L->tasks_submitted);
        if (done != seen_done) {
            seen_done = done;
            deadline = now + limit;
            progressed = 1;
        }
        if (now >= next_report) {
            if (w && w->progress)
                w->progress(w->arg, progressed);
            progressed = 0;
            next_report = now + CHIP_POLL_NS;
        }
        if (now >= next_poll) {
            if (w->counts)
                w->counts(w->arg, atomic_load_explicit(&L->tasks_completed, memory_order_relaxed),
                          atomic_load_explicit(&L->tasks_submitted, memory_order_relaxed));
            if (w->poll(w->arg)) {
                cancel_launch(L, SIMPLER_E_INTERRUPTED, "the run was interrupted");
                next_poll = UINT64_MAX; /* now wait for the threads to stop */
                /* An interrupt is answered at once: AICPU threads that
                 * do not stop by then (an orchestration that never
                 * returns) will not stop at all. */
                if (deadline > now + CHIP_CANCEL_GRACE_NS)
                    deadline = now + CHIP_CANCEL_GRACE_NS;
            } else {
                next_poll = now + CHIP_CANCEL_POLL_NS;
            }
        }
        if (now >= deadline && atomic_load(&L->status) == SIMPLER_E_INTERRUPTED) {
            simpler_event_cancel(&c->done);
            chip_failure_report(c, SIMPLER_E_INTERRUPTED);
            atomic_store(&c->lost, 1);
            return simpler_fail(SIMPLER_E_DEVICE_LOST,
                                "%s: the run was interrupted, but its AICPU threads did not stop (an "
                                "orchestration that never returns?); the device is unusable and will be reset",
                                c->name);
        }
        if (now >= deadline) {
            simpler_event_cancel(&c->done);
            chip_failure_report(c, SIMPLER_E_DEVICE_LOST);
            atomic_store(&L->abort, 1);
            atomic_store(&c->lost, 1);
            return simpler_fail(SIMPLER_E_DEVICE_LOST,
                                "op execution timeout on %s: nothing progressed for %.0f s and the AICPU "
                                "scheduler did not stop; the device is unusable and will be reset",
                                c->name, (double)limit / 1e9);
        }
        uint64_t wait = deadline - now < next_report - now ? deadline - now : next_report - now;
        if (next_poll != UINT64_MAX && next_poll - now < wait)
            wait = next_poll > now ? next_poll - now : 1;
        simpler_event_sleep(&c->done, seq, wait);
    }
    int status = atomic_load(&L->status);
    if (status == SIMPLER_OK)
        return SIMPLER_OK;
    chip_failure_report(c, status);
    simpler_fail(status, "%s", L->message);
    rc = recover_cores(c, cores);
    return rc ? rc : simpler_fail(status, "%s", L->message);
}

void chip_running_report(const chip *c, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    if (!c->mailboxes)
        return;
    for (uint32_t i = 0; i < c->num_core_threads && n + 120 < size; i++) {
        simpler_mailbox *mb = &c->mailboxes[i];
        if (!atomic_load(&mb->in_kernel))
            continue;
        const char *name = kernel_set_name(atomic_load(&mb->kernel_addr));
        int w = snprintf(out + n, size - n, "%score %u was running task %" PRIu64 " (func %u%s%.64s%s)",
                         n ? "; " : "", i, atomic_load(&mb->task_id), atomic_load(&mb->func_id),
                         name ? ", kernel '" : "", name ? name : "", name ? "'" : "");
        if (w > 0)
            n += (size_t)w;
    }
}

const char *chip_signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGFPE: return "SIGFPE (arithmetic error)";
    case SIGABRT: return "SIGABRT (abort)";
    default: return "a fatal signal";
    }
}

void chip_catch_fatal_signals(void (*handler)(int))
{
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
        sigaction(fatal[i], &sa, NULL);
}
