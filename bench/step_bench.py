"""Python PyTorch peer of step_bench.cpp: the same VGG-16-BN (width 1/8), batch, data and SGD
settings, one thread; prints the median step time as one JSON line. Run with /usr/bin/python3.
On a GPU (bench/gpu.sh): --device cuda --image 3,64,200 --width 1 --classifier 1024 --batch 256,
random images of that shape already on the GPU, float32 without TF32 (as nmech trains), eager."""
import argparse
import gzip
import json
import resource
import statistics
import time

import numpy as np
import torch
import torch.nn as nn

CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_bn(width: float = 0.125, classes: int = 10, channels: int = 1, size: int = 32,
             classifier: int = 0) -> nn.Module:
    layers, c = [], channels
    for v in CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        out = max(1, round(v * width))
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    f = classifier or max(1, round(512 * width))
    flat = c * (size // 32) ** 2  # five 2×2 poolings
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, f), nn.ReLU(), nn.Linear(f, f), nn.ReLU(),
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


def timed_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One SGD step, waiting for the loss as nmech's step does; milliseconds."""
    t0 = time.perf_counter()
    opt.zero_grad()
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    loss.item()
    opt.step()
    return (time.perf_counter() - t0) * 1e3


def gpu_main(a: argparse.Namespace) -> None:
    """Images per second on a GPU: synthetic images, nothing copied from the host per step."""
    torch.set_num_threads(1)
    channels, size, classes = (int(v) for v in a.image.split(","))
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.manual_seed(0)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    net = vgg16_bn(a.width, classes, channels, size, a.classifier).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, channels, size, size, device=dev)
    host = x.cpu()  # --copy: a batch copied from host memory every step, as nmech does
    y = torch.randint(0, classes, (a.batch,), device=dev)
    times = []
    for k in range(a.steps + 5):
        if k == 5:
            sync()
            start = time.perf_counter()
        t0 = time.perf_counter()
        if a.copy:
            x = host.to(dev)
        ms = (time.perf_counter() - t0) * 1e3 + timed_step(net, opt, x, y)  # with the copy
        if k >= 5:
            times.append(ms)
    sync()
    total = time.perf_counter() - start
    times.sort()
    print(json.dumps({"impl": "python", "trace": False, "device": a.device, "batch": a.batch, "steps": a.steps,
                      "batch_from_host": a.copy,
                      "median_ms": round(statistics.median(times), 3),
                      "images_per_s": round(a.batch * a.steps / total, 1), "torch": torch.__version__}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("steps", nargs="?", type=int, default=60)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--image", default="3,64,200", help="C,S,K of the GPU run's synthetic images")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--classifier", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--synthetic", action="store_true", help="the GPU measurement's path, on any device")
    ap.add_argument("--copy", action="store_true", help="copy the batch from host memory every step")
    a = ap.parse_args()
    if a.device != "cpu" or a.synthetic:
        gpu_main(a)
        return
    steps = a.steps
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
        ms = timed_step(net, opt, x, y)
        if k >= warmup:
            times.append(ms)
    times.sort()
    print(json.dumps({"impl": "python", "trace": False, "steps": steps, "median_ms": round(statistics.median(times), 3),
                      "p10_ms": round(times[len(times) // 10], 3), "p90_ms": round(times[len(times) * 9 // 10], 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
