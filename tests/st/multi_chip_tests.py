"""The multi-chip Worker's host-level graph, on both runtimes (the
test_*_multi_chip.py files pick one): runs on several chips ordered by the
host arrays and device tensors they read and write, copies between chips,
failures that reach exactly the nodes depending on them, and churn."""
from __future__ import annotations

import concurrent.futures
import os
import random
import threading

import numpy as np
import pytest

import scenes
import simpler
from simpler.host_graph import HOST, Region, array_region


@pytest.fixture
def mc(simpler_worker, kernel_compiler):
    """(worker, {"vector_add": reg, "scaled": reg}) registered for this test."""
    regs = {name: simpler_worker.register(scenes.callable_(kernel_compiler, name))
            for name in ("vector_add", "scaled")}
    yield simpler_worker, regs
    if not simpler_worker.closed:
        for reg in regs.values():
            if reg.registered and all(c.usable for c in simpler_worker.chips.values()):
                reg.unregister()


def test_array_regions_cover_exactly_the_bytes_a_view_spans():
    a = np.zeros(100, dtype=np.float32)
    base = a.__array_interface__["data"][0]
    assert array_region(a) == Region(HOST, base, base + 400)
    assert array_region(a[10:20]) == Region(HOST, base + 40, base + 80)
    assert array_region(a[::-2]) == Region(HOST, base + 4, base + 400)
    m = np.zeros((4, 5), dtype=np.int64)
    mb = m.__array_interface__["data"][0]
    assert array_region(m[:, 1]) == Region(HOST, mb + 8, mb + 8 + 3 * 40 + 8)
    assert array_region(a[5:5]).hi == array_region(a[5:5]).lo


def test_runs_on_two_chips_wait_for_what_they_read(mc):
    w, regs = mc
    d0, d1 = w.devices[:2]
    a = np.arange(64, dtype=np.float32)
    b = np.ones(64, dtype=np.float32)
    t = np.zeros(64, dtype=np.float32)
    out = np.zeros(64, dtype=np.float32)
    edges = w.edges
    h1 = w.submit(d0, regs["scaled"], [a, t, 1.0, 200])     # t = a + 2 + 200, a long chain
    h2 = w.submit(d1, regs["vector_add"], [t, b, out, 1])    # reads t: waits for h1
    w.wait()
    assert h1.done() and h2.done() and h2.exception() is None
    np.testing.assert_array_equal(out, a + 203)
    assert w.edges - edges == 1


def test_independent_runs_on_different_chips_have_no_edge(mc):
    w, regs = mc
    d0, d1 = w.devices[:2]
    xs = [np.arange(4096, dtype=np.float32) for _ in range(2)]
    outs = [np.zeros(4096, dtype=np.float32) for _ in range(2)]
    edges = w.edges
    w.submit(d0, regs["scaled"], [xs[0], outs[0], 0.0, 300])
    w.submit(d1, regs["scaled"], [xs[1], outs[1], 0.0, 300])
    w.wait()
    assert w.edges == edges
    for x, o in zip(xs, outs):
        np.testing.assert_array_equal(o, x + 300)


def test_a_tensor_of_another_chip_is_an_invalid_argument_naming_both(mc):
    w, regs = mc
    d0, d1 = w.devices[:2]
    t = w.malloc(d1, (16,), np.float32)
    try:
        with pytest.raises(simpler.InvalidArgument, match=f"chip {d1}.*chip {d0}"):
            w.submit(d0, regs["vector_add"], [t, t, np.zeros(16, np.float32), 1])
    finally:
        w.free(t)


def test_bad_submissions_are_typed_errors(mc):
    w, regs = mc
    with pytest.raises(simpler.InvalidArgument, match="not a device"):
        w.submit(99, regs["vector_add"], [])
    with pytest.raises(simpler.InvalidArgument, match="takes 4 arguments, not 2"):
        w.submit(w.devices[0], regs["vector_add"], [np.zeros(4, np.float32)] * 2)
    with pytest.raises(simpler.InvalidArgument, match="must be float32, not int32"):
        w.submit(w.devices[0], regs["vector_add"], [np.zeros(4, np.int32)] * 3 + [1])
    with pytest.raises(simpler.InvalidArgument, match="registration"):
        w.submit(w.devices[0], "vector_add", [])
    with pytest.raises(simpler.InvalidArgument, match="sizes differ"):
        w.copy(np.zeros(3, np.float32), np.zeros(4, np.float32))


def test_copies_between_chips_and_the_host_are_nodes(mc):
    w, regs = mc
    d0, d1 = w.devices[:2]
    n = 1000
    a = np.random.default_rng(1).integers(0, 100, n).astype(np.float32)
    x0, x1 = w.malloc(d0, (n,), np.float32), w.malloc(d1, (n,), np.float32)
    out = np.zeros(n, dtype=np.float32)
    try:
        w.copy(x0, a)                                        # host -> chip 0
        w.submit(d0, regs["scaled"], [x0, x0, 1.0, 0])       # x0 += 2 on chip 0
        w.copy(x1, x0)                                       # chip 0 -> chip 1, GM to GM
        w.submit(d1, regs["vector_add"], [x1, x1, x1, 1])    # x1 = 2 * x1 on chip 1
        w.copy(out, x1)                                      # chip 1 -> host
        w.wait()
        np.testing.assert_array_equal(out, 2 * (a + 2))
    finally:
        w.free(x0)
        w.free(x1)


def _random_program(seed: int, devices, n_ops: int):
    """A random program of runs and copies on random chips over
    overlapping views of three shared host arrays and a tensor per chip."""
    rng = random.Random(seed)
    L = 32
    ops = []
    for _ in range(n_ops):
        kind = rng.choice(["add", "add", "scaled", "to_chip", "from_chip", "chip_to_chip"])
        dev = rng.choice(devices)

        def view():
            k = rng.randrange(3)
            if rng.random() < 0.2:
                i = rng.randrange(0, 256 - 2 * L)
                return (k, i, i + 2 * L, 2)      # a strided view: staged and written back through a copy
            i = rng.randrange(0, 256 - L)
            return (k, i, i + L, 1)
        if kind == "add":
            ops.append(("add", dev, view(), view(), view()))
        elif kind == "scaled":
            ops.append(("scaled", dev, view(), view(), float(rng.randrange(4)), rng.randrange(3)))
        elif kind == "to_chip":
            ops.append(("to_chip", dev, view()))
        elif kind == "from_chip":
            ops.append(("from_chip", dev, view()))
        else:
            ops.append(("chip_to_chip", dev, rng.choice(devices)))
    return ops


def _play(ops, host, tensors, run, copy):
    def v(spec):
        k, lo, hi, step = spec
        return host[k][lo:hi:step]
    for op in ops:
        if op[0] == "add":
            _, dev, a, b, out = op
            run(dev, "vector_add", [v(a), v(b), v(out), 1])
        elif op[0] == "scaled":
            _, dev, x, out, s, steps = op
            run(dev, "scaled", [v(x), v(out), s, steps])
        elif op[0] == "to_chip":
            _, dev, src = op
            copy(tensors[dev], v(src))
        elif op[0] == "from_chip":
            _, dev, dst = op
            copy(v(dst), tensors[dev])
        else:
            _, src, dst = op
            copy(tensors[dst], tensors[src])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_program_equals_its_serial_replay(mc, seed):
    w, regs = mc
    devices = list(w.devices)
    ops = _random_program(seed, devices, 150)
    rng = np.random.default_rng(seed)
    init = [rng.integers(0, 50, 256).astype(np.float32) for _ in range(3)]
    init_t = {d: rng.integers(0, 50, 32).astype(np.float32) for d in devices}

    # The serial replay, in numpy.
    host = [a.copy() for a in init]
    tens = {d: t.copy() for d, t in init_t.items()}

    def np_run(dev, name, args):
        if name == "vector_add":
            a, b, out, _ = args
            out[...] = a + b
        else:
            x, out, s, steps = args
            out[...] = x + 2 * np.float32(s) + steps

    def np_copy(dst, src):
        dst[...] = src
    _play(ops, host, tens, np_run, np_copy)

    # The same program on the Worker; strided host views must be
    # contiguous for copies, so those copies go through a contiguous view.
    w_host = [a.copy() for a in init]
    w_tens = {d: w.malloc(d, (32,), np.float32) for d in devices}
    try:
        for d in devices:
            w.copy(w_tens[d], init_t[d].copy())

        def w_run(dev, name, args):
            w.submit(dev, regs[name], args)

        def w_copy(dst, src):
            if isinstance(dst, np.ndarray) and not dst.flags.c_contiguous:
                tmp = np.empty(dst.shape, dst.dtype)
                w.copy(tmp, src)
                w.wait()
                dst[...] = tmp
                return
            if isinstance(src, np.ndarray) and not src.flags.c_contiguous:
                w.wait()
                src = np.ascontiguousarray(src)
                w.copy(dst, src)
                w.wait()
                return
            w.copy(dst, src)
        _play(ops, w_host, w_tens, w_run, w_copy)
        w.wait()
        for k in range(3):
            np.testing.assert_array_equal(w_host[k], host[k], err_msg=f"host array {k}")
        for d in devices:
            got = np.zeros(32, np.float32)
            w.copy(got, w_tens[d])
            w.wait()
            np.testing.assert_array_equal(got, tens[d], err_msg=f"tensor of chip {d}")
    finally:
        for t in w_tens.values():
            w.free(t)


def test_a_failed_run_fails_exactly_the_nodes_that_read_it(simpler_platform, simpler_runtime, kernel_compiler):
    """A run on chip 1 fails (a device lost at launch, injected): the run on
    chip 0 reading its output fails with DeviceLost naming it, a run on
    chip 0 that does not is done, and chip 0 stays usable."""
    with simpler.Worker("faulty:" + simpler_platform, simpler_runtime, devices=[0, 1]) as w:
        reg = w.register(scenes.callable_(kernel_compiler, "vector_add"))
        a = np.arange(16, dtype=np.float32)
        t = np.zeros(16, dtype=np.float32)
        out = np.zeros(16, dtype=np.float32)
        other = np.zeros(16, dtype=np.float32)
        w.chips[1].inject_fault(1, "launch")
        h1 = w.submit(1, reg, [a, a, t, 1])
        h2 = w.submit(0, reg, [t, a, out, 1])          # reads t
        h3 = w.submit(0, reg, [a, a, other, 1])        # independent
        h4 = w.submit(0, reg, [out, a, out, 1])        # reads h2's output: fails too
        with pytest.raises(simpler.DeviceLost):
            w.wait()
        assert isinstance(h1.exception(), simpler.DeviceLost)
        assert str(h1.exception()).startswith("chip 1: ")
        for h in (h2, h4):
            e = h.exception()
            assert isinstance(e, simpler.DeviceLost), e
        assert "reads what run(chip 1" in str(h2.exception())
        assert "reads what run(chip 0" in str(h4.exception()) and "chip 1" in str(h4.exception().__cause__)
        assert h3.exception() is None
        np.testing.assert_array_equal(other, 2 * a)
        np.testing.assert_array_equal(out, 0)           # never written
        # A later reader of what the failed run should have written fails
        # the same way, at once; a run that writes it again clears that.
        late = w.submit(0, reg, [t, a, other, 1])
        assert isinstance(late.exception(1), simpler.DeviceLost)
        with pytest.raises(simpler.DeviceLost, match="was not run"):
            w.wait()
        w.submit(0, reg, [a, a, t, 1]).result()
        w.submit(0, reg, [t, a, out, 1]).result()
        np.testing.assert_array_equal(out, 3 * a)
        w.wait()


def test_wait_raises_the_first_failure_once(simpler_platform, simpler_runtime, kernel_compiler):
    with simpler.Worker("faulty:" + simpler_platform, simpler_runtime, devices=[0, 1]) as w:
        reg = w.register(scenes.callable_(kernel_compiler, "vector_add"))
        a = np.arange(8, dtype=np.float32)
        out = np.zeros(8, dtype=np.float32)
        w.chips[0].inject_fault(1, "launch")
        w.submit(0, reg, [a, a, out, 1])
        w.submit(1, reg, [out, a, a.copy(), 1])
        with pytest.raises(simpler.DeviceLost, match="1 more"):
            w.wait()
        w.wait()        # seen: not raised again


def _process_counts():
    fds = len(os.listdir("/proc/self/fd"))
    return fds, threading.active_count()


def test_churn_of_workers_leaves_nothing_behind(simpler_platform, simpler_runtime, kernel_compiler):
    """Workers created, used and finalized leave no thread, descriptor or
    device allocation behind (on onboard each chip of each Worker is a
    context process, started and reaped)."""
    if simpler_runtime != "host_build_graph":
        pytest.skip("a Worker's lifecycle is the same on both runtimes: churned once, on host_build_graph")
    n = 1000
    callable_ = scenes.callable_(kernel_compiler, "vector_add")
    a = np.arange(8, dtype=np.float32)
    with simpler.Worker(simpler_platform, simpler_runtime, devices=[0, 1]) as w:   # warm: compiles, devices up
        w.run(0, w.register(callable_), [a, a, np.zeros(8, np.float32), 1])
    base = _process_counts()
    for i in range(n):
        with simpler.Worker(simpler_platform, simpler_runtime, devices=[0, 1]) as w:
            if i % 100 == 0:
                reg = w.register(callable_)
                t = w.malloc(1, (8,), np.float32)
                out = np.zeros(8, np.float32)
                w.copy(t, a)
                w.submit(1, reg, [t, t, t, 1])
                w.copy(out, t)
                w.wait()
                np.testing.assert_array_equal(out, 2 * a)
    assert _process_counts() == base
    if simpler_platform == "onboard":       # no context process of ours is left unreaped
        assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_zombie_child(int(p))]


def _is_zombie_child(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] == "Z" and int(fields[1]) == os.getpid()


def _example(name: str):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "examples" / "multi_chip" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"multi_chip_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_four_chip_pipeline_of_1000_micro_batches_gives_the_serial_answer(simpler_worker, kernel_compiler):
    w = simpler_worker
    if len(w.devices) < 4:
        pytest.skip(f"the pipeline has 4 stages; --devices gives {len(w.devices)} chips")
    pipeline = _example("pipeline")
    rng = np.random.default_rng(7)
    batches = [rng.standard_normal(64, dtype=np.float32) for _ in range(1000)]
    edges = w.edges
    with w.register(pipeline.affine_callable(kernel_compiler)) as reg:
        results = pipeline.run_pipeline(w, reg, batches)
    for m, (x, y) in enumerate(zip(batches, results)):
        np.testing.assert_array_equal(y, pipeline.serial(x), err_msg=f"micro-batch {m}")
    assert w.edges > edges


def test_a_chip_lost_mid_collective_fails_it_and_its_readers_only(simpler_platform, simpler_runtime,
                                                                  kernel_compiler):
    """A 4-chip allreduce of 16 MiB a chip loses chip 1 (onboard: its device
    process is killed; sim: a launch fault on chip 1): the collective and
    the run reading its result fail with DeviceLost, nothing waits
    forever, and chip 0 still runs."""
    import signal
    from simpler import testing
    n = 4 << 20
    with testing.private_device_dir():
        platform = simpler_platform if simpler_platform == "onboard" else "faulty:" + simpler_platform
        with simpler.Worker(platform, simpler_runtime, devices=4) as w:
            reg = w.register(scenes.callable_(kernel_compiler, "vector_add"))
            arrays = [np.full(n, d, dtype=np.float32) for d in range(4)]
            ts = [w.malloc(d, (n,), np.float32) for d in range(4)]
            for t, a in zip(ts, arrays):
                w.copy(t, a)
            w.wait()
            if simpler_platform == "onboard":
                pid = w.chips[1].stats["device_pid"]
                h = w.allreduce(ts)
                os.kill(pid, signal.SIGKILL)
            else:
                w.chips[1].inject_fault(1, "launch")
                h = w.allreduce(ts)
            out = np.zeros(16, np.float32)
            later = w.submit(0, reg, [arrays[0][:16], arrays[0][:16], out, 1])
            with pytest.raises(simpler.DeviceLost):
                h.result(timeout=120)
            with pytest.raises(simpler.DeviceLost):
                w.wait()
            assert not w.chips[1].usable
            later.result(timeout=60)            # chip 0's own run, reading nothing the collective writes
            np.testing.assert_array_equal(out, 2 * arrays[0][:16])
            more = np.zeros(16, np.float32)
            w.run(0, reg, [arrays[0][:16], arrays[0][:16], more, 1])
            np.testing.assert_array_equal(more, 2 * arrays[0][:16])
