"""What machine and software a run executed on, captured in the process that ran it, and the
process's own peak memory."""

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

import bench


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
