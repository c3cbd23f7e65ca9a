"""The host-level graph alone (simpler/host_graph.py), with nodes whose
work the test controls: which edges each rule makes, and how a failure
travels (only along read-after-write edges, and to later readers)."""
from __future__ import annotations

import threading

import pytest

import simpler
from simpler.host_graph import HOST, HostGraph, Region


class Gated:
    """Nodes whose work ends when the test opens their gate."""

    def __init__(self, graph: HostGraph) -> None:
        self.graph = graph
        self.started: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def add(self, name: str, reads=(), writes=(), error: BaseException | None = None, device=0):
        gate = self.gates[name] = threading.Event()

        def start(node):
            with self.lock:
                self.started.append(name)

            def finish():
                gate.wait(10)
                self.graph.finish(node, error)
            threading.Thread(target=finish, daemon=True).start()
        return self.graph.add(name, device, reads, writes, start)

    def open(self, name: str) -> None:
        self.gates[name].set()


@pytest.fixture
def g():
    graph = HostGraph([0, 1])
    gated = Gated(graph)
    yield gated
    for gate in gated.gates.values():
        gate.set()
    graph.wait(10)
    graph.close()


X = Region(0, 0, 100)
X_LOW = Region(0, 0, 50)
X_HIGH = Region(0, 50, 100)
Y = Region(0, 200, 300)
X_ON_1 = Region(1, 0, 100)          # the same addresses on another chip: another space


def test_each_rule_makes_its_edge_and_nothing_more(g):
    a = g.add("w1", writes=[X])
    b = g.add("r1", reads=[X_LOW])          # RAW on w1
    c = g.add("r2", reads=[Y])              # nothing
    d = g.add("w2", writes=[X_HIGH])        # WAW on w1 (r1 read only the low half)
    e = g.add("other", writes=[X_ON_1])     # another chip's space: nothing
    assert g.graph.edges == 2
    g.open("r2")
    g.open("other")
    for h in (c, e):
        h.result(5)
    assert not a.done() and not b.done() and not d.done()
    g.open("w1")
    a.result(5)
    g.open("r1")
    b.result(5)
    g.open("w2")
    d.result(5)


def test_a_write_after_reads_waits_for_every_reader(g):
    g.add("w", writes=[X])
    g.open("w")
    r1 = g.add("r1", reads=[X])
    r2 = g.add("r2", reads=[X_HIGH])
    w2 = g.add("w2", writes=[X_LOW])
    assert "w2" not in g.started
    g.open("r1")
    r1.result(5)
    # w2 writes the low half: r2 read the high half, so w2 waits for r1 only
    g.open("w2")
    w2.result(5)
    assert not r2.done()
    g.open("r2")
    r2.result(5)


def test_a_failure_reaches_readers_not_overwriters(g):
    w = g.add("w", writes=[X], error=simpler.DeviceLost("chip 0: lost"))
    r = g.add("r", reads=[X_LOW])
    over = g.add("over", writes=[X])
    g.open("w")
    assert isinstance(w.exception(5), simpler.DeviceLost)
    assert isinstance(r.exception(5), simpler.DeviceLost) and "reads what w writes" in str(r.exception())
    g.open("over")
    assert over.exception(5) is None
    assert "r" not in g.started


def test_later_readers_of_a_failed_write_fail_until_it_is_rewritten(g):
    w = g.add("w", writes=[X], error=RuntimeError("kernel fault"))
    g.open("w")
    w.exception(5)
    late = g.add("late", reads=[X_HIGH])
    assert isinstance(late.exception(1), simpler.RunSkipped)
    g.add("rewrite", writes=[X])
    g.open("rewrite")
    ok = g.add("ok", reads=[X_HIGH])
    g.open("ok")
    assert ok.exception(5) is None


def test_a_node_failed_at_once_does_not_hide_pending_readers_from_later_writers(g):
    """A pending reader of X; a node that fails at once (it reads a failed
    region) and would write X; then a writer of X: the writer must still
    wait for the pending reader (write after read)."""
    bad = g.add("bad", writes=[Y], error=RuntimeError("boom"))
    g.open("bad")
    bad.exception(5)
    producer = g.add("producer", writes=[X])
    g.open("producer")
    producer.result(5)
    reader = g.add("reader", reads=[X])
    doomed = g.add("doomed", reads=[Y], writes=[X])
    assert doomed.done() and isinstance(doomed.exception(), simpler.RunSkipped)
    edges = g.graph.edges
    writer = g.add("writer", writes=[X])
    assert g.graph.edges == edges + 1       # on the reader
    assert not writer.done()
    g.open("reader")
    reader.result(5)
    g.open("writer")
    writer.result(5)


def test_wait_and_the_failures_taken_once(g):
    g.add("f", writes=[X], error=RuntimeError("x"))
    g.open("f")
    assert g.graph.wait(5)
    failed = g.graph.take_failures()
    assert [h.what for h in failed] == ["f"]
    assert g.graph.take_failures() == []


def test_a_host_region_is_its_own_space():
    assert not Region(HOST, 0, 10).overlaps(Region(0, 0, 10))
    assert Region(HOST, 0, 10).overlaps(Region(HOST, 9, 20))
    assert not Region(HOST, 0, 10).overlaps(Region(HOST, 10, 20))


def test_a_quick_node_ready_at_once_starts_on_the_callers_thread_only_when_that_overtakes_nothing():
    """quick() true, the node ready, its chip's feeder idle and the caller
    not one of simpler's threads: start runs on the caller's thread (one
    hand-off fewer). Otherwise on the feeder: behind a node the feeder
    holds, when quick() says starting would wait, and when added from a
    node's completion on a feeder."""
    graph = HostGraph([0])
    where: dict[str, str] = {}
    done = threading.Event()

    def node(name, then=None):
        def start(n):
            where[name] = threading.current_thread().name
            if then is not None:
                then()
            graph.finish(n, None)
        return start

    try:
        graph.add("inline", 0, [], [X], node("inline"), quick=lambda: True).result(10)
        graph.add("no slot", 0, [], [X], node("no slot"), quick=lambda: False).result(10)
        # the feeder busy starting a node: a quick one added meanwhile queues behind it
        release = threading.Event()
        graph.add("busy", 0, [], [Y], node("busy", lambda: release.wait(10)))
        while "busy" not in where:
            threading.Event().wait(0.001)
        behind = graph.add("behind", 0, [], [X], node("behind"), quick=lambda: True)
        release.set()
        behind.result(10)
        # added by a completion on the feeder
        graph.add("from feeder", 0, [], [Y],
                  node("from feeder", lambda: graph.add("child", 0, [], [X], node("child", done.set),
                                                        quick=lambda: True)))
        assert done.wait(10)
        graph.wait(10)
    finally:
        graph.close()
    main = threading.current_thread().name
    assert where["inline"] == main
    assert where["no slot"] != main and where["behind"] != main and where["child"] != main
    assert where["no slot"].endswith("-feeder") and where["child"].endswith("-feeder")
