#include "runtime/task_check.h"

#include <inttypes.h>

#include "common/dtype.h"
#include "common/error.h"

#define BAD(...) simpler_fail(SIMPLER_E_ORCHESTRATION, __VA_ARGS__)

static const char *core_name(uint32_t type)
{
    return type == SIMPLER_CORE_AIC ? "AIC" : type == SIMPLER_CORE_AIV ? "AIV" : "an unknown core type";
}

int task_check(const task_kernel *k, const simpler_task *task, uint64_t id, uint32_t max_blocks)
{
    if (task->num_tensors > SIMPLER_MAX_TASK_TENSORS || task->num_scalars > SIMPLER_MAX_TASK_SCALARS)
        return BAD("task %" PRIu64 ": %u tensors and %u scalars; a task takes at most %d tensors and %d scalars "
                   "(SIMPLER_MAX_TASK_TENSORS, SIMPLER_MAX_TASK_SCALARS)", id, task->num_tensors, task->num_scalars,
                   SIMPLER_MAX_TASK_TENSORS, SIMPLER_MAX_TASK_SCALARS);
    if (task->core_type != k->core_type)
        return BAD("task %" PRIu64 ": kernel '%s' runs on %s, but the task asks for %s", id, k->name,
                   core_name(k->core_type), core_name(task->core_type));
    if (task->num_tensors != k->num_tensors || task->num_scalars != k->num_scalars)
        return BAD("task %" PRIu64 ": kernel '%s' takes %u tensors and %u scalars, the task passes %u and %u", id,
                   k->name, k->num_tensors, k->num_scalars, task->num_tensors, task->num_scalars);
    if ((task->num_tensors && (!task->tensors || !task->tags)) || (task->num_scalars && !task->scalars) ||
        (task->num_deps && !task->deps))
        return BAD("task %" PRIu64 ": a tensor, tag, scalar or deps array is NULL", id);
    if (task->block_num > max_blocks)
        return BAD("task %" PRIu64 ": block_num %u exceeds %u", id, task->block_num, max_blocks);
    return SIMPLER_OK;
}

int task_check_tag(const task_kernel *k, uint64_t id, uint32_t i, uint32_t tag)
{
    if (tag < SIMPLER_INPUT || tag > SIMPLER_NO_DEP)
        return BAD("task %" PRIu64 " (kernel '%s'): tensor %u has unknown tag %u", id, k->name, i, tag);
    uint32_t ktag = k->tags[i];
    if (tag != SIMPLER_NO_DEP && task_tag_writes(ktag) && !task_tag_writes(tag))
        return BAD("task %" PRIu64 " (kernel '%s'): tensor %u is written by the kernel but tagged INPUT", id,
                   k->name, i);
    if (tag != SIMPLER_NO_DEP && !task_tag_writes(ktag) && ktag != SIMPLER_NO_DEP && tag != SIMPLER_INPUT)
        return BAD("task %" PRIu64 " (kernel '%s'): tensor %u is only read by the kernel but tagged as written",
                   id, k->name, i);
    return SIMPLER_OK;
}

int task_output_bytes(const task_kernel *k, uint64_t id, uint32_t i, simpler_tensor *t, uint64_t *bytes_out)
{
    if (t->ndim == 0 || t->ndim > SIMPLER_MAX_DIMS || !simpler_dtype_known(t->dtype))
        return BAD("task %" PRIu64 " (kernel '%s'): OUTPUT tensor %u needs a dtype and 1..%d dimensions "
                   "(use simpler_tensor_new)", id, k->name, i, SIMPLER_MAX_DIMS);
    uint64_t bytes = t->dtype & 0xFF;
    int64_t stride = 1;
    for (int d = (int)t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] < 0 || __builtin_mul_overflow(bytes, (uint64_t)t->shape[d], &bytes) ||
            bytes > (UINT64_C(1) << 48))
            return BAD("task %" PRIu64 ": OUTPUT tensor %u has a bad or huge shape", id, i);
        t->strides[d] = stride;
        stride *= t->shape[d]; /* <= bytes: cannot overflow */
    }
    t->offset = 0;
    *bytes_out = bytes;
    return SIMPLER_OK;
}

int task_tensor_region(const task_kernel *k, uint64_t id, uint32_t i, const simpler_tensor *t,
                       const addr_map *known, dep_region *r, addr_entry **buffer)
{
    *buffer = NULL;
    if (!simpler_dtype_known(t->dtype))
        return BAD("task %" PRIu64 " (kernel '%s'): tensor %u has unknown dtype 0x%x", id, k->name, i, t->dtype);
    if (dep_region_init(r, t))
        return simpler_fail_prefix(SIMPLER_E_ORCHESTRATION, "task %" PRIu64 " (kernel '%s'): tensor %u", id,
                                   k->name, i);
    if (dep_region_empty(r))
        return SIMPLER_OK;
    addr_entry *e = addr_map_get(known, t->addr);
    if (!e)
        return BAD("task %" PRIu64 " (kernel '%s'): tensor %u has base 0x%" PRIx64
                   ", which is neither a run argument nor an earlier OUTPUT still alive (make views with simpler_view)",
                   id, k->name, i, t->addr);
    if (r->lo < e->key || r->hi > e->key + e->size)
        return BAD("task %" PRIu64 " (kernel '%s'): tensor %u view [%" PRIu64 ", %" PRIu64
                   ") bytes lies outside its tensor of %" PRIu64 " bytes", id, k->name, i, r->lo - e->key,
                   r->hi - e->key, e->size);
    *buffer = e;
    return SIMPLER_OK;
}

int task_known_argument(addr_map *known, const simpler_tensor *t, uint32_t index, int input)
{
    dep_region r;
    if (dep_region_init(&r, t) != SIMPLER_OK || dep_region_empty(&r))
        return 0;
    uint64_t size = r.hi - t->addr;
    addr_entry *e = addr_map_get(known, t->addr);
    if (!e)
        return addr_map_put(known, t->addr, size, input ? TASK_BUFFER_INPUT : 0, index);
    if (!input)
        e->tag = 0;
    if (e->size < size)
        e->size = size;
    return 0;
}

int task_check_write(const task_kernel *k, uint64_t id, uint32_t i, uint32_t tag, const addr_entry *buffer)
{
    if (!buffer || buffer->tag != TASK_BUFFER_INPUT || !task_tag_writes(tag))
        return SIMPLER_OK;
    return BAD("task %" PRIu64 " (kernel '%s'): tensor %u writes the run's tensor argument %u, which the signature "
               "declares \"in\": nothing would copy the result back (declare it \"inout\" or \"out\")",
               id, k->name, i, buffer->aux);
}
