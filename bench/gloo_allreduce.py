"""Gloo's all-reduce (what PyTorch uses on CPU) of the same bytes as nmech_reduce_bench: 2
processes, torch.distributed with the gloo backend, one float32 tensor of N elements, median of
the slowest rank per repetition. Usage: /usr/bin/python3 bench/gloo_allreduce.py N [reps]"""
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank: int, size: int, n: int, reps: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    x = torch.randn(n)
    times = []
    for i in range(reps + 3):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(x)
        t = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if i >= 3:
            times.append(t.item())
    if rank == 0:
        times.sort()
        print(json.dumps({"bench": "allreduce", "impl": "gloo", "ranks": size, "mbytes": round(n * 4 / 1e6, 1),
                          "median_ms": round(1e3 * statistics.median(times), 2),
                          "p10_ms": round(1e3 * times[len(times) // 10], 2),
                          "p90_ms": round(1e3 * times[(len(times) - 1) * 9 // 10], 2)}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    n = int(sys.argv[1])
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    mp.spawn(worker, args=(2, n, reps, 29500 + os.getpid() % 1000), nprocs=2)
