"""Run under mpiexec -n N (tests/unit/test_mpi.py): every rank builds a
Worker over sim chips 0 and 1 with comm=MPI.COMM_WORLD and checks the
cross-rank collectives against numpy of what every rank contributed (each
rank's data is seeded from its rank, so every rank can compute the
expected answer). Prints "OK rank R" at the end; any failure raises."""
import hashlib
import sys

import numpy as np
from mpi4py import MPI

import simpler
from simpler import mpi as smpi

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
DEVICES = [0, 1]
OPS = {"sum": np.add, "max": np.maximum, "min": np.minimum, "prod": np.multiply}


def data(case: int, r: int, d: int, shape, dtype) -> np.ndarray:
    rng = np.random.default_rng([case, r, d])
    if np.dtype(dtype).kind == "f":
        return rng.uniform(0.5, 1.5, shape).astype(dtype)      # prod stays finite over 8 chips
    return rng.integers(-3, 4, shape).astype(dtype)


def expected_in_order(case, shape, dtype, op):
    """op over the job's chips in (rank, device) order: chip 0 op chip 1 on
    each rank, then those over ranks 0..n-1, as simpler documents."""
    per_rank = []
    for r in range(size):
        acc = data(case, r, DEVICES[0], shape, dtype).copy()
        for d in DEVICES[1:]:
            OPS[op](acc, data(case, r, d, shape, dtype), out=acc)
        per_rank.append(acc)
    out = per_rank[0].copy()
    for x in per_rank[1:]:
        OPS[op](out, x, out=out)
    return out


def every_rank_same(b: bytes) -> bool:
    return len(set(comm.allgather(hashlib.sha256(b).hexdigest()))) == 1


def expect(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")


with simpler.Worker(platform="sim", devices=DEVICES, comm=comm) as w:
    assert w.comm is comm and w.mpi.rank == rank and w.mpi.size == size, w.mpi
    assert w.mpi.devices_by_rank == [tuple(DEVICES)] * size, w.mpi.devices_by_rank
    assert w.mpi.chips == [(r, d) for r in range(size) for d in DEVICES]

    # Allreduce through the Worker: every op, integer and float dtypes,
    # sizes that do and do not split evenly over the ranks.
    case = 0
    for dtype in (np.int32, np.int64, np.float32, np.float64, np.float16):
        for shape in ((1,), (7,), (3, 5), (10_000,)):
            for op in OPS:
                case += 1
                want = expected_in_order(case, shape, dtype, op)
                results = []
                for _ in range(2):      # twice: bit-identical run to run
                    ts = [w.malloc(d, shape, dtype) for d in DEVICES]
                    for d, t in zip(DEVICES, ts):
                        w.copy(t, data(case, rank, d, shape, dtype)).result()
                    smpi.worker_allreduce(w, ts, op).result()
                    outs = []
                    for t in ts:
                        host = np.empty(shape, dtype)
                        w.copy(host, t).result()
                        outs.append(host)
                        w.free(t)
                    assert outs[0].tobytes() == outs[1].tobytes(), "chips of one rank differ"
                    results.append(outs[0])
                got = results[0]
                assert got.tobytes() == results[1].tobytes(), f"{op} {dtype} {shape}: not bit-identical run to run"
                assert every_rank_same(got.tobytes()), f"{op} {dtype} {shape}: ranks differ"
                if np.dtype(dtype).kind == "f":
                    assert got.tobytes() == want.tobytes(), f"{op} {dtype} {shape}: not in (rank, chip) order"
                    stack = np.stack([data(case, r, d, shape, np.float64) for r in range(size) for d in DEVICES])
                    ref = {"sum": stack.sum(0), "max": stack.max(0), "min": stack.min(0), "prod": stack.prod(0)}[op]
                    tol = 1e-2 if dtype == np.float16 else 1e-5
                    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, err_msg=f"{op} {dtype}")
                else:
                    stack = np.stack([data(case, r, d, shape, dtype) for r in range(size) for d in DEVICES])
                    ref = {"sum": stack.sum(0, dtype=dtype), "max": stack.max(0), "min": stack.min(0),
                           "prod": stack.prod(0, dtype=dtype)}[op]
                    np.testing.assert_array_equal(got, ref, err_msg=f"{op} {dtype} {shape}")

    # Host-buffer collectives across ranks, against numpy of every rank's part.
    priv = w.mpi.private
    for n in (1, 5, 4096):
        mine = data(100 + n, rank, 0, (n,), np.float32)
        parts = [data(100 + n, r, 0, (n,), np.float32) for r in range(size)]
        out = np.empty((size, n), np.float32)
        smpi.cross_rank_allgather(priv, mine, out)
        np.testing.assert_array_equal(out, np.stack(parts))

        send = data(200 + n, rank, 0, (size * n,), np.int64)
        recv = np.empty(n, np.int64)
        smpi.cross_rank_reduce_scatter(priv, send, recv, "sum")
        total = sum(data(200 + n, r, 0, (size * n,), np.int64) for r in range(size))
        np.testing.assert_array_equal(recv, total[rank * n:(rank + 1) * n])

        for root in range(size):
            buf = data(300 + n, rank, root, (n,), np.float64)
            smpi.cross_rank_broadcast(priv, buf, root=root)
            np.testing.assert_array_equal(buf, data(300 + n, root, root, (n,), np.float64))

        send = data(400 + n, rank, 0, (size, n), np.int32)
        recv = np.empty((size, n), np.int32)
        smpi.cross_rank_all_to_all(priv, send, recv)
        np.testing.assert_array_equal(recv, np.stack([data(400 + n, r, 0, (size, n), np.int32)[rank]
                                                      for r in range(size)]))

    # Arguments are checked with typed errors, on every rank alike (no rank
    # sends anything, so none is left waiting).
    t0, t1 = w.malloc(0, (4,), np.float32), w.malloc(1, (4,), np.float32)
    expect(simpler.InvalidArgument, smpi.worker_allreduce, w, [t0, t1], "mean")
    expect(simpler.InvalidArgument, smpi.worker_allreduce, w, [t0], "sum")
    expect(simpler.InvalidArgument, smpi.worker_allreduce, w, [t0, w.malloc(1, (5,), np.float32)], "sum")
    expect(simpler.InvalidArgument, smpi.cross_rank_allreduce, priv, [1.0, 2.0])
    expect(simpler.InvalidArgument, smpi.cross_rank_allreduce, priv, np.zeros(4), "sum", -1)
    expect(simpler.InvalidArgument, smpi.cross_rank_allreduce, "not a comm", np.zeros(4))
    expect(simpler.InvalidArgument, smpi.cross_rank_broadcast, priv, np.zeros(4), size)
    expect(simpler.InvalidArgument, smpi.cross_rank_allgather, priv, np.zeros(4), np.zeros(4 * size + 1))

e = expect(simpler.InvalidArgument, simpler.Worker, platform="sim", devices=[0], comm=object())
assert "mpi4py communicator" in str(e), e
e = expect(simpler.InvalidState, smpi.worker_allreduce, simpler.Worker(platform="sim", devices=[0]), [], "sum")
print(f"OK rank {rank}", flush=True)
