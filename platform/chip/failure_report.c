/*
 * A failed launch's report (simpler.h's simpler_failure_report): what the
 * cores' mailboxes hold, written into GM for the host. The mailbox slots
 * are a ring: a core's last SIMPLER_MAILBOX_SLOTS posted tasks are still
 * there, those it ran and those queued behind its current one. Called as
 * the launch fails, before the cores are reset, and from a dying device
 * context's signal handler: no lock, no allocation.
 */
#include <stdatomic.h>
#include <string.h>

#include "chip/chip.h"
#include "chip/kernel_set.h"
#include "simpler/simpler.h"

static uint32_t core_of_mailbox(const chip *c, uint64_t addr, uint32_t num_cores)
{
    for (uint32_t i = 0; i < num_cores; i++)
        if ((uint64_t)(uintptr_t)&c->mailboxes[i] == addr)
            return i;
    return UINT32_MAX;
}

/* Whether core's slot for seq still holds that task of this launch. */
static int slot_held(const chip *c, uint32_t core, uint32_t seq)
{
    uint32_t posted = atomic_load(&c->mailboxes[core].door.seq);
    return simpler_seq_before(c->launch_seq[core], seq) && !simpler_seq_before(posted, seq) &&
           posted - seq < SIMPLER_MAILBOX_SLOTS;
}

/* Which task of core's slot s is meant: for a run (device_abi.h), the
 * one in its kernel if it runs, else its first, which the slot itself
 * describes (a finished run's entries may be another task's by now: a
 * ring slot is reused once its task finished). */
static uint32_t entry_of(const chip *c, uint32_t core, const simpler_slot *s, uint32_t state)
{
    if (s->run_count < 2 || state != SIMPLER_REPORT_RUNNING || !s->run_id_step)
        return 0;
    uint64_t i = (atomic_load(&c->mailboxes[core].task_id) - s->task_id) / s->run_id_step;
    return i < s->run_count ? (uint32_t)i : 0;
}

static void add_task(const chip *c, simpler_failure_report *r, uint32_t core, uint32_t seq, uint32_t state)
{
    if (r->num_tasks == SIMPLER_REPORT_MAX_TASKS) {
        r->tasks_left_out++;
        return;
    }
    simpler_report_task *t = &r->tasks[r->num_tasks++];
    memset(t, 0, sizeof *t);
    const simpler_slot *s = &c->mailboxes[core].slots[(seq - 1) % SIMPLER_MAILBOX_SLOTS];
    uint32_t k = entry_of(c, core, s, state);
    uint64_t kernel_addr = s->kernel_addr, tensors_addr = s->tensors_addr, scalars_addr = s->scalars_addr;
    t->task_id = s->task_id;
    t->func_id = s->func_id;
    t->num_tensors = s->num_tensors;
    t->num_scalars = s->num_scalars;
    if (k) {
        const simpler_run_entry *e =
            (const simpler_run_entry *)(uintptr_t)(s->run_addr + (uint64_t)k * s->run_stride);
        kernel_addr = e->kernel_addr;
        tensors_addr = s->run_base + e->tensors_off;
        scalars_addr = s->run_base + e->scalars_off;
        t->task_id = s->task_id + (uint64_t)k * s->run_id_step;
        t->func_id = e->func_id;
        t->num_tensors = e->num_tensors;
        t->num_scalars = e->num_scalars;
    }
    t->state = state;
    t->core = core;
    t->seq = seq;
    t->block_idx = s->block_idx;
    t->block_num = s->block_num;
    const simpler_tensor *tensors = (const simpler_tensor *)(uintptr_t)tensors_addr;
    for (uint32_t i = 0; tensors && i < t->num_tensors && i < SIMPLER_REPORT_TENSORS; i++)
        t->tensors[i] = tensors[i];
    const uint64_t *scalars = (const uint64_t *)(uintptr_t)scalars_addr;
    for (uint32_t i = 0; scalars && i < t->num_scalars && i < SIMPLER_REPORT_SCALARS; i++)
        t->scalars[i] = scalars[i];
    const char *name = kernel_set_name(kernel_addr);
    if (name)
        strncpy(t->kernel, name, sizeof t->kernel - 1);
    if (state == SIMPLER_REPORT_FINISHED || s->run_count > 1)
        return;
    /* What it waits for: producers on other cores that have not finished. */
    for (uint32_t w = 0; w < s->num_waits && w < SIMPLER_SLOT_WAITS; w++) {
        uint32_t p = core_of_mailbox(c, s->waits[w].mailbox_addr, c->launch.num_cores);
        uint32_t pseq = s->waits[w].seq;
        if (p == UINT32_MAX || !simpler_seq_before(atomic_load(&c->mailboxes[p].finished), pseq) ||
            !slot_held(c, p, pseq) || t->num_waits == SIMPLER_REPORT_WAITS)
            continue;
        t->waits_for[t->num_waits++] = c->mailboxes[p].slots[(pseq - 1) % SIMPLER_MAILBOX_SLOTS].task_id;
    }
}

void chip_failure_report(const chip *c, int status)
{
    const simpler_launch *L = &c->launch;
    simpler_failure_report *r = (simpler_failure_report *)(uintptr_t)L->p.failure_addr;
    if (!r || !c->mailboxes)
        return;
    r->magic = 0;
    r->status = status;
    r->num_tasks = r->tasks_left_out = 0;
    r->tasks_completed = atomic_load(&L->tasks_completed);
    r->tasks_submitted = atomic_load(&L->tasks_submitted);
    uint32_t n = L->num_cores;
    /* The running tasks first, then the queued ones, then the finished:
     * what does not fit is the least telling. */
    for (uint32_t i = 0; i < n; i++) {
        const simpler_mailbox *mb = &c->mailboxes[i];
        uint32_t ack = atomic_load(&mb->ack);
        if (atomic_load(&mb->in_kernel) && slot_held(c, i, ack))
            add_task(c, r, i, ack, SIMPLER_REPORT_RUNNING);
    }
    for (uint32_t i = 0; i < n; i++) {
        const simpler_mailbox *mb = &c->mailboxes[i];
        uint32_t ack = atomic_load(&mb->ack), posted = atomic_load(&mb->door.seq);
        for (uint32_t seq = ack + 1; !simpler_seq_before(posted, seq); seq++)
            if (slot_held(c, i, seq))
                add_task(c, r, i, seq, SIMPLER_REPORT_POSTED);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t finished = atomic_load(&c->mailboxes[i].finished);
        for (uint32_t k = 0; k < SIMPLER_REPORT_RECENT; k++)
            if (slot_held(c, i, finished - k))
                add_task(c, r, i, finished - k, SIMPLER_REPORT_FINISHED);
    }
    atomic_thread_fence(memory_order_release);
    r->magic = SIMPLER_REPORT_MAGIC;
}
