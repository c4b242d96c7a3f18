"""Time a few optimiser steps and one test-time sweep of the Part VI full-scale recipes; extrapolate.

The full scales of ``thinking-longer`` and ``overthinking-recall`` are the papers' recipes (tens of thousands
of steps). Before spending GPU hours on them, this probe measures seconds per step on the machine at hand
and prints how long each notebook's training would take. Run: ``python benchmarks/full_scale_probe.py``
(``--device cpu`` works too, slowly). The numbers here mirror the notebooks' ``SCALES["full"]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from interpbook.data.reasoning import mazes, prefix_sums
from interpbook.models import DTNet
from interpbook.models.recurrent import iteration_report, open_pixels, progressive_loss
from interpbook.train import TrainConfig, fit

# name: (model kwargs, data, batch, alpha, steps of the full recipe, nets trained, test sweep)
RECIPES = {
    "overthinking-recall (per net)": dict(
        model=dict(dim=1, in_channels=1, width=400, recall=True, blocks_per_iter=2, max_iters=30),
        data=lambda n, dev: prefix_sums(n, 32, seed=0, device=dev), batch=100, alpha=1.0, steps=12_000, nets=4,
        sweep=lambda dev: prefix_sums(1000, 512, seed=1, device=dev), sweep_iters=500, sweeps=4 * 5),
    "thinking-longer, prefix sums (per net)": dict(
        model=dict(dim=1, in_channels=1, width=120, recall=False, blocks_per_iter=2, max_iters=10),
        data=lambda n, dev: prefix_sums(n, 32, seed=0, device=dev), batch=150, alpha=0.0, steps=500 * 67, nets=2,
        sweep=lambda dev: prefix_sums(10_000, 64, seed=1, device=dev), sweep_iters=30, sweeps=2 * 4),
    "thinking-longer, mazes": dict(
        model=dict(dim=2, in_channels=3, width=128, recall=True, blocks_per_iter=2, max_iters=30),
        data=lambda n, dev: mazes(n, 9, seed=0, upsample=True, device=dev), batch=50, alpha=0.01, steps=50 * 1000,
        nets=1, sweep=lambda dev: mazes(1000, 33, seed=1, upsample=True, device=dev), sweep_iters=120, sweeps=4),
}


def probe(name: str, r: dict, device: str, steps: int) -> None:
    torch.manual_seed(0)
    net = DTNet(**r["model"]).to(device)
    x, y = r["data"]((steps + 5) * r["batch"], device)
    mask = open_pixels if r["model"]["dim"] == 2 else None
    loss = progressive_loss(r["alpha"], r["model"]["max_iters"], mask=mask, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=r["batch"], lr=1e-4, clip_grad=1.0)
    fit(net, x[: 5 * r["batch"]], y[: 5 * r["batch"]], cfg, loss=loss)  # warm-up (cuDNN autotune, allocator)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fit(net, x[5 * r["batch"]:], y[5 * r["batch"]:], cfg, loss=loss)
    sync()
    per_step = (time.perf_counter() - t0) / steps
    xs, ys = r["sweep"](device)
    t0 = time.perf_counter()
    iteration_report(net, xs, ys, r["sweep_iters"], mask=mask)
    sync()
    sweep = time.perf_counter() - t0
    total = per_step * r["steps"] * r["nets"] + sweep * r["sweeps"]
    print(f"{name:>40}: {1000 * per_step:7.1f} ms/step x {r['steps']} steps x {r['nets']} nets"
          f" + {r['sweeps']} sweeps x {sweep:5.1f} s  ->  about {total / 60:6.1f} min", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=30, help="timed optimiser steps per recipe")
    args = parser.parse_args()
    print(f"device: {torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}")
    for name, recipe in RECIPES.items():
        probe(name, recipe, args.device, args.steps)
