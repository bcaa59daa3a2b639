"""What machine and software a run executed on, captured in the process that ran it, the
process's own peak memory, and how busy the machine was meanwhile."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import bench

if TYPE_CHECKING:
    from bench.results import Conditions


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    root = Path(bench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return ""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def gpu_description() -> str:
    """What nvidia-smi reports (name, memory, driver per GPU), or "" without an NVIDIA GPU."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return (
            "; ".join(line.strip() for line in out.stdout.splitlines() if line.strip()) if out.returncode == 0 else ""
        )
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.cache
def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU (as nvidia-smi reports; asked once per process)."""
    return bool(gpu_description())


@functools.cache
def capture(backend: str, device: str = "cpu") -> dict[str, str]:
    """The environment of this process for runs on `backend` and `device` (cached per process).

    CPU runs hide the GPUs from their worker, so they record none."""
    from bench import registry

    backend_version = registry.backend(backend).version()
    return {
        "python": platform.python_version(),
        "keras": _version("keras"),
        "backend": backend,
        "backend_version": backend_version,
        "numpy": _version("numpy"),
        "cpu": _cpu_model(),
        "cpu_cores": str(os.cpu_count() or 0),
        "gpus": gpu_description() if device != "cpu" else "",
        "os": f"{platform.system()} {platform.release()}",
        "hostname": socket.gethostname(),
        "harness_version": bench.__version__,
        "git_commit": _git_commit(),
        "executable": sys.executable,
        **_jax_runtime(backend),
    }


def _jax_runtime(backend: str) -> dict[str, str]:
    """For JAX runs: jax and jaxlib versions, the XLA flags in force and the default matmul precision (on a GPU,
    "default" lets XLA use TF32 for float32 products; "highest" keeps float32)."""
    if backend != "jax":
        return {}
    import jax

    return {
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
    }


def env_id(env: dict[str, str]) -> str:
    """Content hash of an environment record (the store keeps each distinct one once)."""
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]


def reset_peak_rss() -> None:
    """Restart this process's peak-memory counter, so a reused worker reports each run's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # not Linux, or not allowed: the peak then covers the worker's life so far
        pass


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last `reset_peak_rss` (MiB)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


class LoadMeter:
    """How busy the machine was between entering and leaving: the load average per core, the share of
    CPU time stolen by a hypervisor (where the kernel reports it) and the share other processes used
    (the machine's busy CPU time minus this process's own, over all cores)."""

    def __enter__(self) -> LoadMeter:
        import psutil

        self._machine = psutil.cpu_times()
        self._own = psutil.Process().cpu_times()
        return self

    def __exit__(self, *exc: object) -> None:
        import psutil

        self._machine_end = psutil.cpu_times()
        self._own_end = psutil.Process().cpu_times()

    def conditions(self) -> Conditions:
        from bench.results import Conditions

        before, after = self._machine, self._machine_end
        total = _cpu_total(after) - _cpu_total(before)
        if total <= 0:
            return Conditions()
        idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
        own = (self._own_end.user - self._own.user) + (self._own_end.system - self._own.system)
        steal = getattr(after, "steal", None)
        try:
            load = os.getloadavg()[0] / (os.cpu_count() or 1)
        except OSError:
            load = None
        return Conditions(
            load_per_core=load,
            cpu_steal=(steal - before.steal) / total if steal is not None else None,
            other_cpu_share=min(1.0, max(0.0, (total - idle - own) / total)),
        )


def _cpu_total(times: object) -> float:
    # Linux counts guest time inside user and nice as well
    guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return float(sum(times)) - guest  # type: ignore[arg-type]
