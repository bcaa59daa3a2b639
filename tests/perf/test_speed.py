"""The `scan` engine's speed against outside references, side by side in one process (issue 27):

- the peer: a stateful PyTorch `nn.LSTM` loop as its users write it (state carried and detached batch to
  batch, Adam, MSE), on the same series, windows and streams layout, at the seed's size (4 units, look_back 3,
  batch 1), a middle one (32, 16, 32) and a large one (128, 50, 256); skips where torch is missing;
- the floor: `benchmarks/floor/lstm_floor.c`, the seed workload's arithmetic in plain C on one core;
- the batch-size curve: per-step and per-sample cost of `scan` for B = 1, 2, 4, ..., 256 at 4 and 32 units,
  with 1 run and with 5 runs trained together; its figure goes to $LSTM_BENCH_FIGURES (or the test's folder);
- fused small products (`bench.engines.small_products`) against every product a library dot, B = 1 to 32;
- the arithmetic rate: `scan`'s training FLOP/s at 64 units, look_back 24, batch 1,024 against NumPy's BLAS
  on the gate-sized product (1,024 x 65 by 65 x 256) in the same process.

Every figure is steady state: each measurement's first (compiling) round is a warm-up and not timed.
Run: pytest tests/perf/test_speed.py --benchmark-only -s   (ratios print at the end)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.datasets import resolve_dataset
from test_throughput import record, scan_epoch, seed_spec, seed_windows

ROOT = Path(__file__).resolve().parents[2]
# (name, units, look_back, batch size, series length): long enough for several steps at every size
SIZES = [("seed", 4, 3, 1, 6000), ("middle", 32, 16, 32, 24000), ("large", 128, 50, 256, 12000)]
CURVE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CURVE_UNITS = (4, 32)
CURVE_RUNS = (1, 5)


def sine(length: int) -> Any:
    return resolve_dataset({"name": "sine", "length": length, "period": 50, "noise": 0.05}, Path("."))


def peer_name(size: str, who: str) -> str:
    return f"peer {size}: {who}"


def curve_name(units: int, runs: int, batch: int) -> str:
    return f"curve {units} units, {runs} run(s): batch {batch}"


# --- the peer: PyTorch nn.LSTM, stateful, as its users write it ---------------------------------


def torch_epoch(units: int, look_back: int, batch: int, windows: Any) -> Any:
    """One epoch of a stateful `nn.LSTM` + `nn.Linear` over `windows`' training rows in the engine's batch
    order (row j of batch k continues row j of batch k - 1): state carried and detached, Adam, MSE."""
    torch = pytest.importorskip("torch", reason="the PyTorch peer needs torch (pip install '.[torch]')")
    torch.manual_seed(0)
    t = np.asarray(windows.train_t)
    n = len(t) // batch * batch
    x = windows.series[t[:n, None] + np.arange(-look_back, 0)[None, :]]  # (n, look_back, features)
    y = windows.targets[t[:n]]
    xs = torch.from_numpy(np.ascontiguousarray(x, np.float32)).reshape(n // batch, batch, look_back, -1)
    ys = torch.from_numpy(np.asarray(y, np.float32)).reshape(n // batch, batch, 1)
    lstm = torch.nn.LSTM(xs.shape[-1], units, batch_first=True)
    head = torch.nn.Linear(units, 1)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    loss_fn = torch.nn.MSELoss()

    def epoch() -> None:
        h = torch.zeros(1, batch, units)
        c = torch.zeros(1, batch, units)
        for k in range(xs.shape[0]):
            out, (h, c) = lstm(xs[k], (h, c))
            loss = loss_fn(head(out[:, -1]), ys[k])
            opt.zero_grad()
            loss.backward()
            opt.step()
            h, c = h.detach(), c.detach()

    return epoch, n


@pytest.mark.parametrize("size,units,look_back,batch,length", SIZES, ids=[s[0] for s in SIZES])
def test_peer_torch(
    size: str, units: int, look_back: int, batch: int, length: int, benchmark: Any, throughput: dict[str, float]
) -> None:
    spec = seed_spec(batch, dataset=sine(length), units=units, look_back=look_back)
    epoch, n = torch_epoch(units, look_back, batch, seed_windows(spec))
    benchmark.pedantic(epoch, rounds=3, warmup_rounds=1)
    record(benchmark, throughput, peer_name(size, "PyTorch nn.LSTM loop"), n)


@pytest.mark.parametrize("size,units,look_back,batch,length", SIZES, ids=[s[0] for s in SIZES])
def test_peer_scan(
    size: str,
    units: int,
    look_back: int,
    batch: int,
    length: int,
    benchmark: Any,
    throughput: dict[str, float],
    jax_backend: None,
) -> None:
    spec = seed_spec(batch, dataset=sine(length), units=units, look_back=look_back)
    epoch, n, program = scan_epoch(batch, spec=spec)
    benchmark.pedantic(epoch, rounds=5, warmup_rounds=1)
    benchmark.extra_info["kernel"] = program.kernel(False, False, True)
    record(benchmark, throughput, peer_name(size, "scan"), n)


# --- the floor: the same arithmetic in plain C ----------------------------------------------------


FLOOR = "floor: plain C, LSTM(4), look_back 3, batch 1, one core"
FLOOR_SCAN = "floor: scan, same series"
FLOOR_LENGTH = 20000


def test_floor_c(tmp_path: Path, benchmark: Any, throughput: dict[str, float]) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("the C floor needs a C compiler (cc)")
    exe = tmp_path / "lstm_floor"
    subprocess.run([cc, "-O3", "-march=native", "-o", str(exe), str(ROOT / "benchmarks/floor/lstm_floor.c"), "-lm"],
                   check=True)  # fmt: skip
    w = seed_windows(seed_spec(1, dataset=sine(FLOOR_LENGTH)))
    n = w.n_train_windows
    data = tmp_path / "series.txt"
    np.savetxt(data, np.asarray(w.series[: n + 3, 0], np.float64), fmt="%.7f")
    # the program times its own epochs (process start and reading the file are not training): its median epoch
    out = benchmark.pedantic(
        lambda: subprocess.run([str(exe), str(data), str(n), "9"], check=True, capture_output=True, text=True).stdout,
        rounds=1,
    )
    rate = float(out.split()[0].split("=")[1])
    benchmark.extra_info["samples_per_sec"] = throughput[FLOOR] = rate
    print(f"\n{FLOOR}: {rate:,.0f} samples/s ({out.strip()})")


def test_floor_scan(benchmark: Any, throughput: dict[str, float], jax_backend: None) -> None:
    epoch, n, _ = scan_epoch(1, spec=seed_spec(1, dataset=sine(FLOOR_LENGTH)))
    benchmark.pedantic(epoch, rounds=9, warmup_rounds=1)
    record(benchmark, throughput, FLOOR_SCAN, n)


# --- the batch-size curve --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curve(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(units, runs, batch) -> (seconds per step, seconds per sample); the figure and table once all ran."""
    points: dict[tuple[int, int, int], tuple[float, float]] = {}
    yield points
    if points:
        folder = Path(os.environ.get("LSTM_BENCH_FIGURES") or tmp_path_factory.mktemp("curve"))
        write_curve(points, folder)


@pytest.mark.parametrize("runs", CURVE_RUNS)
@pytest.mark.parametrize("units", CURVE_UNITS)
@pytest.mark.parametrize("batch", CURVE_BATCHES)
def test_batch_curve(
    batch: int, units: int, runs: int, benchmark: Any, throughput: dict[str, float], curve: Any, jax_backend: None
) -> None:
    spec = seed_spec(batch, dataset=sine(20000), units=units)
    epoch, n, _ = scan_epoch(batch, repeats=runs if runs > 1 else 0, spec=spec)
    benchmark.pedantic(epoch, rounds=7 if units == 4 else 3, warmup_rounds=1)
    rate = record(benchmark, throughput, curve_name(units, runs, batch), runs * n)  # machine samples/s
    steps = n // batch
    curve[units, runs, batch] = (benchmark.stats.stats.median / steps, 1.0 / rate)


def write_curve(points: dict[tuple[int, int, int], tuple[float, float]], folder: Path) -> None:
    """The curve's table (printed, and batch_curve.csv) and figure (batch_curve.png) in `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    from matplotlib.figure import Figure

    rows = [
        {"units": u, "runs": r, "batch_size": b, "us_per_step": s * 1e6, "ns_per_sample": p * 1e9}
        for (u, r, b), (s, p) in sorted(points.items())
    ]
    frame = pd.DataFrame(rows)
    frame["samples_per_sec"] = 1e9 / frame["ns_per_sample"]
    frame["vs_previous_batch"] = frame.groupby(["units", "runs"])["samples_per_sec"].transform(lambda s: s / s.shift())
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "batch_curve.csv", index=False)
    print("\n" + frame.to_string(index=False, float_format=lambda v: f"{v:,.3g}"))
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    per_step, per_sample = fig.subplots(1, 2)
    for (u, r), g in frame.groupby(["units", "runs"]):
        style = dict(marker="o", ls="-" if r == 1 else "--", color="tab:blue" if u == 4 else "tab:orange")
        label = f"{u} units, {r} run{'s' if r > 1 else ''} together"
        per_step.plot(g["batch_size"], g["us_per_step"], label=label, **style)
        per_sample.plot(g["batch_size"], g["samples_per_sec"], label=label, **style)
    for ax, what in ((per_step, "microseconds per optimizer step"), (per_sample, "samples/s (all runs together)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    per_sample.legend(fontsize=8)
    fig.suptitle(f"scan engine, LSTM, look_back 3, sine series, stateful ({time.strftime('%Y-%m-%d')})")
    fig.savefig(folder / "batch_curve.png", dpi=110)
    print(f"batch curve: {folder / 'batch_curve.png'} and batch_curve.csv")


# --- the arithmetic rate at a realistic size ----------------------------------------------------------

GEMM = "arithmetic: NumPy BLAS, gate-sized product 1024 x 65 @ 65 x 256, GFLOP/s"
GEMM_SCAN = "arithmetic: scan, 64 units, look_back 24, batch 1024, training GFLOP/s"


def test_arithmetic_rate(benchmark: Any, throughput: dict[str, float], jax_backend: None) -> None:
    units, look_back, batch = 64, 24, 1024
    epoch, n, _ = scan_epoch(batch, spec=seed_spec(batch, dataset=sine(50000), units=units, look_back=look_back))
    benchmark.pedantic(epoch, rounds=3, warmup_rounds=1)
    rate = n / benchmark.stats.stats.median
    # training: about 3 x the forward's 8 H (I + H) FLOPs per timestep and sample (I = 1 feature)
    flops = 3 * 8 * units * (1 + units) * look_back
    throughput[GEMM_SCAN] = rate * flops / 1e9
    a = np.random.default_rng(0).standard_normal((batch, units + 1)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((units + 1, 4 * units)).astype(np.float32)
    reps = 2000
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t)
    throughput[GEMM] = 2 * batch * (units + 1) * 4 * units * reps / best / 1e9


# --- fused small products against library dots, side by side --------------------------------------------

FUSED_BATCHES = (1, 2, 4, 8, 16, 32)


def fused_name(batch: int, fused: bool) -> str:
    return f"seed size, batch {batch}, {'small products fused' if fused else 'every product a dot'}"


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "dots"])
@pytest.mark.parametrize("batch", FUSED_BATCHES)
def test_fused_or_dots(
    batch: int, fused: bool, benchmark: Any, throughput: dict[str, float], jax_backend: None, monkeypatch
) -> None:
    from bench.engines import scan, small_products

    monkeypatch.setattr(small_products, "LIMIT", small_products.LIMIT if fused else 0)
    scan._program.cache_clear()  # a fresh program traces with this limit
    try:
        epoch, n, _ = scan_epoch(batch, spec=seed_spec(batch, dataset=sine(20000)))
        benchmark.pedantic(epoch, rounds=9, warmup_rounds=1)
    finally:
        scan._program.cache_clear()
    record(benchmark, throughput, fused_name(batch, fused), n)
