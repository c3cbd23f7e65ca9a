"""Run under mpiexec -n N (tests/unit/test_mpi.py): every rank builds a
Worker over sim chips 0 and 1 with comm=MPI.COMM_WORLD and checks each
Worker collective across the ranks (reduce_scatter, allgather, broadcast,
all_to_all; allreduce is in collectives.py) against numpy over every chip
of the job in (rank, device) order, twice (bit-identical run to run), with
every rank's data computable on every rank. Then argv[1] == "lost": chip 1
of the last rank is lost (an injected launch fault) in the on-chip part
of an allreduce; every rank must fail that collective, and the next, with
DeviceLost naming that rank and chip, not wait for it, and chip 0 of each
rank must still work. Prints "OK rank R" at the end; any failure raises."""
import sys

import numpy as np
from mpi4py import MPI

import simpler

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
DEVICES = [0, 1]
CHIPS = [(r, d) for r in range(size) for d in DEVICES]
G = len(CHIPS)


def data(case: int, chip: tuple[int, int], shape, dtype) -> np.ndarray:
    rng = np.random.default_rng([case, *chip])
    if np.dtype(dtype).kind == "f":
        return rng.uniform(0.5, 1.5, shape).astype(dtype)
    return rng.integers(-3, 4, shape).astype(dtype)


def upload(w, arrays):
    ts = [w.malloc(d, a.shape, a.dtype) for d, a in zip(DEVICES, arrays)]
    for t, a in zip(ts, arrays):
        w.copy(t, a)
    return ts


def download(w, ts):
    outs = [np.empty(t.shape, t.dtype) for t in ts]
    for o, t in zip(outs, ts):
        w.copy(o, t)
    w.wait()
    return outs


def twice(w, make, run, case):
    """run(w) twice on fresh tensors: the chips' results, the same bytes both times."""
    got = []
    for _ in range(2):
        ins, outs = make()
        run(ins, outs).result(60)
        got.append(download(w, outs))
        for t in (*ins, *outs):
            if not t.buffer.freed:
                w.free(t)
    assert [g.tobytes() for g in got[0]] == [g.tobytes() for g in got[1]], f"case {case}: not bit-identical"
    return got[0]


platform = "faulty:sim" if sys.argv[1:] == ["lost"] else "sim"
with simpler.Worker(platform=platform, devices=DEVICES, comm=comm) as w:
    case = 0
    for dtype in (np.int32, np.float32, np.float64):
        for m in (1, 3, 1000):
            # reduce_scatter: chip g gets op over every chip's block g
            for op in ("sum", "max", "prod"):
                case += 1
                full = {c: data(case, c, (G * m,), dtype) for c in CHIPS}

                def make():
                    return (upload(w, [full[(rank, d)] for d in DEVICES]),
                            [w.malloc(d, (m,), dtype) for d in DEVICES])

                got = twice(w, make, lambda i, o: w.reduce_scatter(o, i, op), case)
                ufunc = {"sum": np.add, "max": np.maximum, "prod": np.multiply}[op]
                for d, out in zip(DEVICES, got):
                    g = CHIPS.index((rank, d))
                    stack = np.stack([full[c][g * m:(g + 1) * m] for c in CHIPS])
                    want = ufunc.reduce(stack.astype(np.float64) if np.dtype(dtype).kind == "f" else stack,
                                        axis=0)
                    if np.dtype(dtype).kind == "f":
                        np.testing.assert_allclose(out.astype(np.float64), want, rtol=1e-5, err_msg=f"{op} {dtype}")
                    else:
                        np.testing.assert_array_equal(out, want.astype(dtype), err_msg=f"{op} {dtype}")
            # allgather: every chip gets every chip's input in global order
            case += 1
            part = {c: data(case, c, (m,), dtype) for c in CHIPS}
            got = twice(w, lambda: (upload(w, [part[(rank, d)] for d in DEVICES]),
                                    [w.malloc(d, (G * m,), dtype) for d in DEVICES]),
                        lambda i, o: w.allgather(o, i), case)
            for out in got:
                np.testing.assert_array_equal(out, np.concatenate([part[c] for c in CHIPS]))
            # all_to_all: chip g's block j = chip j's block g
            case += 1
            full = {c: data(case, c, (G * m,), dtype) for c in CHIPS}
            got = twice(w, lambda: (upload(w, [full[(rank, d)] for d in DEVICES]),
                                    [w.malloc(d, (G * m,), dtype) for d in DEVICES]),
                        lambda i, o: w.all_to_all(o, i), case)
            for d, out in zip(DEVICES, got):
                g = CHIPS.index((rank, d))
                np.testing.assert_array_equal(out, np.concatenate([full[c][g * m:(g + 1) * m] for c in CHIPS]))
            # broadcast from every chip of the job
            for root in CHIPS:
                case += 1
                mine = [data(case, (rank, d), (m,), dtype) for d in DEVICES]
                ts = upload(w, mine)
                w.broadcast(ts, root).result(60)
                for out in download(w, ts):
                    np.testing.assert_array_equal(out, data(case, root, (m,), dtype))
                for t in ts:
                    w.free(t)

    # Bad arguments: typed errors, alike on every rank (nothing is sent).
    a, b = w.malloc(0, (G,), np.float32), w.malloc(1, (G,), np.float32)
    for bad, exc in ((lambda: w.broadcast([a, b], 0), simpler.InvalidArgument),          # not (rank, device)
                     (lambda: w.broadcast([a, b], (size, 0)), simpler.InvalidArgument),  # no such rank
                     (lambda: w.reduce_scatter([a, b], [a, b]), simpler.InvalidArgument),
                     (lambda: w.allgather([a, b], [a, b]), simpler.InvalidArgument),
                     (lambda: w.all_to_all([a, b], [a]), simpler.InvalidArgument),
                     (lambda: w.reduce_scatter([a, b], [a, b], "mean"), simpler.InvalidArgument)):
        try:
            bad()
        except exc:
            pass
        else:
            raise AssertionError(f"no {exc.__name__}")
    w.wait()

    if platform.startswith("faulty"):
        lost = (size - 1, 1)
        ts = upload(w, [np.full(64, rank + d, np.float32) for d in DEVICES])
        w.wait()
        if rank == lost[0]:
            w.chips[lost[1]].inject_fault(1, "launch")
        for attempt in range(2):
            try:
                w.allreduce(ts).result(60)
            except simpler.DeviceLost as e:
                msg = str(e)
                assert f"rank {lost[0]}: chip {lost[1]}:" in msg and "injected fault" in msg, msg
            else:
                raise AssertionError("allreduce with a lost chip did not fail")
        try:
            w.wait()
        except simpler.DeviceLost:
            pass
        more = np.arange(8, dtype=np.float32)
        t = w.malloc(0, (8,), np.float32)
        w.copy(t, more)
        back = np.empty(8, np.float32)
        w.copy(back, t)
        w.wait()
        np.testing.assert_array_equal(back, more)
print(f"OK rank {rank}", flush=True)
