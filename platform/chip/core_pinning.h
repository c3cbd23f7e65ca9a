/*
 * Where a core's thread runs: the chip engine (chip.c) pins each core to
 * a CPU of its own as far as they go, and the C tests' device harness
 * pins its cores the same way, so that the scheduler sees the same
 * mailboxes (pinned, cpu) in both.
 */
#ifndef SIMPLER_CHIP_CORE_PINNING_H
#define SIMPLER_CHIP_CORE_PINNING_H

#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "common/device_abi.h"

/* The CPU core i runs on: the i-th of cpus (those the process may use),
 * round the list, as a core of the device is a processor of its own
 * (left to the kernel's load balancer, the two AIVs of a cluster, which a
 * stencil keeps waiting on each other, could share one CPU and take
 * turns). -1 with fewer than two CPUs: nothing is pinned. */
static inline int chip_core_cpu(const cpu_set_t *cpus, uint32_t i)
{
    if (CPU_COUNT(cpus) < 2)
        return -1;
    uint32_t pick = i % (uint32_t)CPU_COUNT(cpus);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, cpus) && !pick--)
            return cpu;
    return -1;
}

/* Pin core i's thread to its CPU and say so in its mailbox (for the
 * scheduler's hand-over, dispatch_loop.c); nothing with cpu < 0. */
static inline void chip_pin_core(pthread_t thread, simpler_mailbox *mb, int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (pthread_setaffinity_np(thread, sizeof one, &one) == 0) {
        mb->pinned = 1;
        mb->cpu = (uint32_t)cpu;
    }
}

#endif
