"""`lstm-bench doctor` on a machine without a GPU, and with a fake `nvidia-smi` that reports one."""

from __future__ import annotations

import pytest

import os
import stat
from pathlib import Path

from bench import doctor, registry
from clitools import run_cli, run_in_process


@pytest.mark.slow
def test_doctor_reports_versions_devices_and_probes_and_exits_0(tmp_path: Path) -> None:
    done = run_in_process("doctor", "--backend", "jax", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "nvidia-smi: no NVIDIA GPU found" in text
    assert "jax 0." in text and "sees cpu and no GPU" in text
    assert "scan on cpu: carries state" in text and "fit on cpu: does NOT carry state" in text
    assert "advice: fit on cpu: use engine: scan on jax" in text


@pytest.mark.slow
def test_a_gpu_the_backend_cannot_use_gets_advice(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'NVIDIA H200, 143771 MiB, 570.86'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    path = f"{fake.parent}{os.pathsep}{os.environ['PATH']}"
    done = run_cli("doctor", "--backend", "jax", cwd=tmp_path, extra_env={"PATH": path})
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "nvidia-smi: NVIDIA H200, 143771 MiB, 570.86" in text
    assert "nvidia-smi reports a GPU but jax sees none (a CPU-only build)" in text and "'.[gpu]'" in text


def test_a_backend_that_is_not_installed_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(registry.backend("torch"), "version", lambda: "")
    check = doctor.check_backend("torch")
    assert check.version == "" and check.advice == ("torch is not installed: pip install '.[torch]'",)
