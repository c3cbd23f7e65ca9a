"""An allreduce over every chip of every rank: 2 ranks x 2 sim chips.

    mpiexec -n 2 python examples/mpi/allreduce.py

Each rank drives its own chips 0 and 1 (a Worker with comm=); chip d of
rank r starts with the values 10 * r + d + [0, 1, 2, ...]. The allreduce
leaves on every chip of every rank the sum over all four chips: first
on each rank's chips (vector-core steps reading each other's GM through
windows), then across the ranks over MPI, in a fixed order, so it is the
same to the bit everywhere.
"""
import numpy as np
from mpi4py import MPI

import simpler

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
N = 8

with simpler.Worker(platform="sim", devices=[0, 1], comm=comm) as w:
    tensors = [w.malloc(d, (N,), np.float32) for d in w.devices]
    for d, t in zip(w.devices, tensors):
        w.copy(t, np.arange(N, dtype=np.float32) + 10 * rank + d)
    w.allreduce(tensors, "sum").result()     # on the chips, then over MPI, then back: one graph

    out = [np.empty(N, np.float32) for _ in tensors]
    for o, t in zip(out, tensors):
        w.copy(o, t)
    w.wait()
    chips = w.mpi.chips          # every chip of the job as (rank, device)

everyone = [np.arange(N, dtype=np.float32) + 10 * r + d for r, d in chips]
expected = np.sum(everyone, axis=0, dtype=np.float32)
for o in out:
    assert np.array_equal(o, expected), (o, expected)
same = comm.allgather(out[0].tobytes())
assert all(s == same[0] for s in same), "ranks differ"
if rank == 0:
    print(f"{comm.Get_size()} ranks x {len(w.devices)} chips: {chips}")
    print(f"allreduce(sum) = {out[0]}")
    print("OK")
