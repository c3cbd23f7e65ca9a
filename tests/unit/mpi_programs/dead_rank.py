"""Run under mpiexec (tests/unit/test_mpi.py): the last rank dies while
the others are inside an allreduce (argv[1]: "exit" = os._exit(3),
"kill" = SIGKILL). The survivors must get simpler.Timeout naming that rank
within SIMPLER_MPI_TIMEOUT_S, then InvalidState on the next collective.
Each survivor writes "TIMEOUT rank R ...: <message>" and "BROKEN rank R:
..." lines to argv[2]/R.txt (files, not stdout: mpiexec may end before it
forwards the output of ranks it kills), then waits for the other
survivors' files: under -disable-auto-cleanup, once a rank was killed by
a signal, hydra kills the rest as soon as any one of them exits."""
import os
import signal
import sys
import time

import numpy as np
from mpi4py import MPI

import simpler
from simpler import mpi as smpi

# Under mpiexec -disable-auto-cleanup, hydra sends SIGUSR1 to the other
# ranks when one is killed by a signal; its default action would end them.
signal.signal(signal.SIGUSR1, signal.SIG_IGN)

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
dead = size - 1
w = simpler.Worker(platform="sim", devices=[0, 1], comm=comm)
ts = [w.malloc(d, (1024,), np.float32) for d in w.devices]
for t in ts:
    w.copy(t, np.full(1024, rank, np.float32)).result()
smpi.worker_allreduce(w, ts, "sum").result()       # all alive: works

if rank == dead:
    time.sleep(0.5)     # the others are in the next allreduce by now
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(3)

lines = []
t0 = time.monotonic()
try:
    smpi.worker_allreduce(w, ts, "sum").result()
except simpler.Timeout as e:
    lines.append(f"TIMEOUT rank {rank} after {time.monotonic() - t0:.1f} s: {e}")
except BaseException as e:     # reported, so the test shows what went wrong
    lines.append(f"ERROR rank {rank}: {e!r}")
try:
    smpi.worker_allreduce(w, ts, "sum")
except simpler.InvalidState as e:
    lines.append(f"BROKEN rank {rank}: {e}")
w.finalize()
out = os.path.join(sys.argv[2], f"{rank}.txt")
with open(out + ".tmp", "w") as f:
    f.write("\n".join(lines) + "\n")
os.rename(out + ".tmp", out)
deadline = time.monotonic() + 30
while time.monotonic() < deadline and len([n for n in os.listdir(sys.argv[2]) if n.endswith(".txt")]) < size - 1:
    time.sleep(0.05)
# MPI_Finalize could wait for the dead rank: end without it.
os._exit(0)
