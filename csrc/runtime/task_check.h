/*
 * Checking a submitted task, shared by both runtimes: against its kernel
 * (core type, counts, tags), OUTPUT tensor layout, and views against the
 * buffers the run knows. Failures are SIMPLER_E_ORCHESTRATION with a
 * message naming the task and tensor.
 */
#ifndef SIMPLER_RUNTIME_TASK_CHECK_H
#define SIMPLER_RUNTIME_TASK_CHECK_H

#include <stdint.h>

#include "common/addr_map.h"
#include "runtime/dependency_tracker/region.h"
#include "simpler/orch.h"

typedef struct task_kernel {
    const char *name;
    uint32_t core_type;
    uint32_t num_tensors;
    uint32_t num_scalars;
    const uint8_t *tags;        /* the kernel's direction per tensor */
} task_kernel;

static inline int task_tag_writes(uint32_t tag)
{
    return tag == SIMPLER_OUTPUT || tag == SIMPLER_OUTPUT_EXISTING || tag == SIMPLER_INOUT;
}

static inline int task_tag_reads(uint32_t tag) { return tag == SIMPLER_INPUT || tag == SIMPLER_INOUT; }

/* Counts (within SIMPLER_MAX_TASK_TENSORS and _SCALARS, and the kernel's),
 * arrays, core type and block count of a task. */
int task_check(const task_kernel *k, const simpler_task *task, uint64_t id, uint32_t max_blocks);

/* One tensor's tag against the kernel's direction for it. */
int task_check_tag(const task_kernel *k, uint64_t id, uint32_t i, uint32_t tag);

/* Give an OUTPUT tensor row-major strides and return its size in bytes. */
int task_output_bytes(const task_kernel *k, uint64_t id, uint32_t i, simpler_tensor *t, uint64_t *bytes);

/* addr_map tag of a known buffer that is a run argument the signature
 * declares "in" (aux: its index among the run's tensors). Nothing copies
 * it back, so no task may write it. */
#define TASK_BUFFER_INPUT 2

/* Add the run's tensor `index` to `known` (an argument passed twice
 * keeps the larger size, and is an input only if both are). -1 when out of
 * memory. */
int task_known_argument(addr_map *known, const simpler_tensor *t, uint32_t index, int input);

/* A task's tensor i, of tag, in known buffer `buffer` (may be NULL): it must
 * not write a run argument declared "in". */
int task_check_write(const task_kernel *k, uint64_t id, uint32_t i, uint32_t tag, const addr_entry *buffer);

/* The tensor's region; it must lie inside a buffer of `known` (keyed by
 * base address, with sizes). *buffer is that buffer's entry (NULL for an
 * empty view). */
int task_tensor_region(const task_kernel *k, uint64_t id, uint32_t i, const simpler_tensor *t,
                       const addr_map *known, dep_region *r, addr_entry **buffer);

#endif
