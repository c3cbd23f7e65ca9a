"""The allreduce across MPI ranks: simpler against mpi4py's own
comm.Allreduce on the same numpy data, side by side in one run.

    mpiexec -n 2 python bench/mpi_bench.py [--quick]
    mpiexec -n 4 python bench/mpi_bench.py [--quick]

Columns, each a float32 sum over every rank, 1 KiB to 64 MiB a rank:
- simpler cross-rank: simpler.mpi.cross_rank_allreduce on a host buffer
  (reduce-scatter, reduction in rank order, allgather; deterministic);
- mpi4py Allreduce: comm.Allreduce(MPI.IN_PLACE, buf, MPI.SUM), MPICH's
  own algorithm (not deterministic across message timings);
- simpler Worker: simpler.mpi.worker_allreduce over 2 sim chips a rank,
  the chips' copies to and from the host included.
Bandwidth is bus bandwidth as nccl-tests defines it: size / time x
2(n-1)/n, n = ranks (the Worker column counts ranks, as its chips reduce
on the host first). Time is the median over repetitions of the slowest
rank's time. Figures, not assertions; rank 0 prints the table.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from mpi4py import MPI

import simpler
from simpler.mpi import cross_rank_allreduce, worker_allreduce

SIZES = [1 << k for k in range(10, 27, 2)]    # 1 KiB, 4 KiB, ..., 64 MiB


def timed(comm, fn, budget: float, max_reps: int) -> float:
    """Median seconds of fn() over repetitions, each the slowest rank's
    time. Rank 0 decides when to stop, so every rank calls fn() as often."""
    times: list[float] = []
    start = time.perf_counter()
    more = True
    while more:
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        times.append(comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
        more = comm.bcast(len(times) < 3 or (len(times) < max_reps and time.perf_counter() - start < budget),
                          root=0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args()
    budget, max_reps = (0.1, 20) if args.quick else (0.5, 200)
    comm = MPI.COMM_WORLD
    n, rank = comm.Get_size(), comm.Get_rank()
    factor = 2 * (n - 1) / n
    rows = []
    with simpler.Worker(platform="sim", devices=[0, 1], comm=comm) as w:
        private = w.mpi.private
        for size in SIZES:
            count = size // 4
            # Zeros: a sum repeated in place stays finite (random data would
            # reach inf, then NaN, in a few hundred repetitions); adds cost
            # the same on any normal value.
            buf = np.zeros(count, np.float32)
            ref = buf.copy()
            mine = timed(comm, lambda: cross_rank_allreduce(private, buf, "sum"), budget, max_reps)
            theirs = timed(comm, lambda: comm.Allreduce(MPI.IN_PLACE, ref, MPI.SUM), budget, max_reps)
            ts = [w.malloc(d, (count,), np.float32) for d in w.devices]
            for t in ts:
                w.copy(t, buf)
            w.wait()
            chips = timed(comm, lambda: worker_allreduce(w, ts, "sum").result(), budget, max_reps)
            for t in ts:
                w.free(t)
            rows.append((size, mine, theirs, chips))
    if rank == 0:
        print(f"allreduce(sum, float32) across {n} ranks on one host, bus bandwidth GB/s "
              f"(size / time x 2(n-1)/n); MPICH {MPI.Get_version()}, mpi4py {__import__('mpi4py').__version__}")
        print("| size a rank | simpler cross-rank GB/s (µs) | mpi4py Allreduce GB/s (µs) | simpler time / mpi4py's "
              "| simpler Worker, 2 chips a rank, GB/s (µs) |")
        print("|---:|---:|---:|---:|---:|")
        for size, mine, theirs, chips in rows:
            label = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
            cell = lambda t: f"{size / t * factor / 1e9:.2f} ({t * 1e6:,.0f})"
            print(f"| {label} | {cell(mine)} | {cell(theirs)} | {mine / theirs:.2f} | {cell(chips)} |")


if __name__ == "__main__":
    main()
