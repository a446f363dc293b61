"""Per-step time of the default geometry, for comparing two versions of the code on the same machine.

One training step (forward + backward, quantizer regularisers) of the ``quickstart`` geometry on generated data,
batch ``B``, one thread; prints the best and the median of ``R`` steps after a warm-up step. Run it alternately
against two checkouts (``PYTHONPATH=OTHER_CHECKOUT``) so both see the same machine load:

    OMP_NUM_THREADS=1 PYTHONPATH=/path/to/old python benchmarks/bench_step_ab.py 16 7
    OMP_NUM_THREADS=1 python benchmarks/bench_step_ab.py 16 7
"""

import sys
import time

import torch

import quaton_fab
from quaton_fab.training.config import preset
from quaton_fab.training.trainer import Trainer

torch.set_num_threads(1)
B, R = int(sys.argv[1]), int(sys.argv[2])
cfg = preset("quickstart", dataset="synthetic", train_samples=64, val_samples=16, test_samples=16, batch_size=B)
parts = Trainer(cfg, "unused").build()
net, task, enc = parts.network, parts.task, parts.encoding
field, phase = enc.field_and_phase(parts.data.train.images[:B], cfg.neurons, net.geometry.oversample)
labels = parts.data.train.labels[:B]


def step():
    for p in net.parameters():
        p.grad = None
    loss = task.loss(net(field), labels, phase)
    for q in net.phase_modules:
        loss = loss + q.regularizer()
    loss.backward()


step()
times = []
for _ in range(R):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
times.sort()
print(f"{quaton_fab.__file__}: batch {B}, best {times[0]:.4f} s, median {times[len(times) // 2]:.4f} s")
