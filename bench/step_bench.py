"""Python PyTorch peer of step_bench.cpp: the same VGG-16-BN (width 1/8), batch, data and SGD
settings, one thread; prints the median step time as one JSON line. Run with /usr/bin/python3."""
import gzip
import json
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_bn(width: float = 0.125, classes: int = 10) -> nn.Module:
    layers, c = [], 1
    for v in CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        out = max(1, round(v * width))
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    f = max(1, round(512 * width))
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c, f), nn.ReLU(), nn.Linear(f, f), nn.ReLU(),
                        nn.Linear(f, classes))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return net


def fashion_mnist(path: str = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") -> np.ndarray:
    with gzip.open(path) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return raw.reshape(-1, 1, 28, 28)


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    warmup = 5
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images = fashion_mnist()
    net = vgg16_bn()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    times = []
    for k in range(steps + warmup):
        idx = rng.integers(0, len(images), 128)
        x = torch.from_numpy(images[idx].astype(np.float32) / 255.0)
        x = nn.functional.pad((x - 0.2860) / 0.3530, (2, 2, 2, 2))
        y = torch.from_numpy(rng.integers(0, 10, 128))
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        loss.item()
        opt.step()
        t1 = time.perf_counter()
        if k >= warmup:
            times.append((t1 - t0) * 1e3)
    times.sort()
    print(json.dumps({"impl": "python", "trace": False, "steps": steps, "median_ms": round(statistics.median(times), 3),
                      "p10_ms": round(times[len(times) // 10], 3), "p90_ms": round(times[len(times) * 9 // 10], 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
