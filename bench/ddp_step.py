"""What a PyTorch user runs instead of an nmech group: Python DistributedDataParallel with the
gloo backend, 2 processes of one thread each, the same VGG-16-BN (width 1/8, bench/step_bench.py),
Fashion-MNIST batch split across the processes, SGD with momentum and weight decay. Median step
(forward, backward with DDP's bucketed all-reduce, optimizer) of the slowest process.
Usage: /usr/bin/python3 bench/ddp_step.py [global batch] [steps] [width]"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_bench import fashion_mnist, vgg16_bn  # noqa: E402


def worker(rank: int, size: int, batch: int, steps: int, width: float, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    torch.manual_seed(0)
    net = nn.parallel.DistributedDataParallel(vgg16_bn(width))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    images = fashion_mnist()
    rng = np.random.default_rng(0)
    per = batch // size
    times = []
    for k in range(steps + 5):
        idx = rng.integers(0, len(images), batch)[rank * per:(rank + 1) * per]
        x = torch.from_numpy(images[idx].astype(np.float32) / 255.0)
        x = nn.functional.pad((x - 0.2860) / 0.3530, (2, 2, 2, 2))
        y = torch.from_numpy(rng.integers(0, 10, batch)[rank * per:(rank + 1) * per])
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        t = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if k >= 5:
            times.append(t.item())
    if rank == 0:
        med = statistics.median(times)
        times.sort()
        print(json.dumps({"bench": "group_step", "impl": "python_ddp_gloo", "ranks": size, "batch": batch,
                          "per_rank_batch": per, "width": width, "steps": steps, "median_ms": round(1e3 * med, 2),
                          "p10_ms": round(1e3 * times[len(times) // 10], 2),
                          "p90_ms": round(1e3 * times[(len(times) - 1) * 9 // 10], 2),
                          "images_per_s": round(batch / med, 1)}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    width = float(sys.argv[3]) if len(sys.argv) > 3 else 0.125
    mp.spawn(worker, args=(2, batch, steps, width, 29500 + os.getpid() % 1000), nprocs=2)
