/*
 * The dependency tracker: which earlier tasks a new access must wait for.
 *
 * Per base address it keeps the live regions: each with its last writer
 * and the readers since. Callers guarantee that different base addresses
 * never share memory (the runtimes accept only bases that are starts of
 * distinct allocations: run arguments and OUTPUT tensors), so history is
 * kept per base and regions of one base are compared by region. A read waits for the writers of overlapping
 * regions; a write waits for their writers and readers, then replaces what
 * it overwrites (regions it covers go, regions it overlaps in part are
 * trimmed to the rest), so history lasts only as long as it can matter.
 * Work per access is proportional to the live regions it overlaps.
 */
#ifndef SIMPLER_DEPS_TRACKER_H
#define SIMPLER_DEPS_TRACKER_H

#include <stdint.h>

#include "runtime/dependency_tracker/region.h"

#define DEP_NO_TASK UINT32_MAX

typedef struct dep_tracker dep_tracker;

/* Called once per predecessor found (possibly more than once for the same
 * one); returns non-zero to abort the access. */
typedef int (*dep_emit_fn)(void *ctx, uint32_t producer);

int dep_tracker_create(dep_tracker **out);
void dep_tracker_destroy(dep_tracker *t);

/* Forget every region, as a new tracker would, but keep the memory for
 * the next use (a runtime's next run), so that a run of the size of the
 * last allocates and faults in nothing. A pool or table far larger than
 * the last use needed is given back first. */
void dep_tracker_reset(dep_tracker *t);

/* Host memory the tracker holds. */
uint64_t dep_tracker_bytes(const dep_tracker *t);

/* Record that task reads and/or writes region r, reporting predecessors. */
int dep_tracker_access(dep_tracker *t, uint32_t task, const dep_region *r, int reads, int writes,
                       dep_emit_fn emit, void *ctx);

/* Whether a task may still run (its edges still matter). */
typedef int (*dep_live_fn)(void *ctx, uint32_t task);

/* Examine up to budget entries (round robin over all of them): drop
 * readers and writers that are no longer live and entries left with
 * neither. A streaming runtime calls this a little per access so that
 * memory follows the tasks in flight, not the tasks ever submitted. */
void dep_tracker_sweep(dep_tracker *t, uint32_t budget, dep_live_fn live, void *ctx);

/* Forget every region of base (its memory was freed and may be reused). */
void dep_tracker_forget(dep_tracker *t, uint64_t base);

/* Live regions across all bases, and entries examined by all accesses so
 * far (for tests: work per access must not grow with live regions). */
uint64_t dep_tracker_live_regions(const dep_tracker *t);
uint64_t dep_tracker_visits(const dep_tracker *t);

#endif
