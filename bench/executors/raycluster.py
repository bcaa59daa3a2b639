"""The Ray executor: each worker slot is a Ray actor serving one (backend, device) pair.

Like the local executor's worker processes, an actor is reused for consecutive groups of its
pair and replaced when it dies (killed, out of memory, segfault): the group it held fails with
the cause and the suite goes on. Actors get `KERAS_BACKEND` (and hidden GPUs for CPU runs)
through their runtime environment before anything imports Keras, and call `init_worker` in
their constructor. GPU runs ask Ray for `num_gpus=1`. Results stream back with `ray.wait`; the
driver commits them one by one. Every node needs lstm-bench installed (same version).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import ray
from ray import exceptions as rx

from bench.executors import CRASH_HOOK_ENV, Claim, crash_hook, execution_groups, exit_cause, failed_result
from bench.results import RunResult
from bench.specs import RunSpec
from bench.worker import execute_group, init_worker

log = logging.getLogger(__name__)

#: Object store of a Ray instance started here: results are small, so keep it small.
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20


class BenchActor:
    """Lives in a Ray worker process; configured for one backend and device at construction."""

    def __init__(self, backend: str, device: str, threads: int | None) -> None:
        init_worker(backend, device, threads)

    def run(self, group: list[RunSpec], concurrency: int) -> list[RunResult]:
        crash_hook(group)
        return execute_group(group, concurrency)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Slot:
    key: tuple[str, str] | None = None
    actor: Any = None
    group: list[RunSpec] | None = None
    ref: Any = None


@dataclass
class RayExecutor:
    """Runs groups as calls on Ray actors; `workers` slots (default: the cluster's CPUs)."""

    address: str | None = None
    workers: int | None = None
    _started_here: bool = False
    _slots: list[_Slot] = field(default_factory=list)

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        env = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
        if CRASH_HOOK_ENV in os.environ:
            env[CRASH_HOOK_ENV] = os.environ[CRASH_HOOK_ENV]
        kw: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING, runtime_env={"env_vars": env})
        if self.address:
            ray.init(address=self.address, **kw)
        else:
            cpus = len(os.sched_getaffinity(0))
            ray.init(num_cpus=max(cpus, self.workers or 1), include_dashboard=False,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, **kw)
            self._started_here = True

    def _resources(self) -> tuple[int, int]:
        res = ray.cluster_resources()
        return int(res.get("CPU", 1)), int(res.get("GPU", 0))

    def _actor(self, backend: str, device: str, threads: int, gpus: int) -> Any:
        env = {"KERAS_BACKEND": backend, "OMP_NUM_THREADS": str(threads)}
        use_gpu = device == "gpu" or (device == "auto" and gpus > 0)
        if not use_gpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
            env["JAX_PLATFORMS"] = "cpu"
        if CRASH_HOOK_ENV in os.environ:
            env[CRASH_HOOK_ENV] = os.environ[CRASH_HOOK_ENV]
        cls = ray.remote(BenchActor).options(
            num_cpus=threads, num_gpus=1 if use_gpu else 0, max_restarts=0, max_task_retries=0,
            runtime_env={"env_vars": env},
        )
        return cls.remote(backend, device, threads)

    def results(self, specs: list[RunSpec], claim: Claim | None = None) -> Iterator[RunResult]:

        self._connect()
        cpus, gpus = self._resources()
        queue = execution_groups(specs)
        n = max(1, min(self.workers or cpus, len(queue) or 1))
        threads = max(1, cpus // n)
        concurrency = n
        self._slots = [_Slot() for _ in range(n)]
        try:
            while True:
                for slot in self._slots:
                    while slot.ref is None and queue:
                        pick = next((i for i, g in enumerate(queue) if (g[0].backend, g[0].device) == slot.key), 0)
                        group = queue.pop(pick)
                        group = claim(group) if claim else group
                        if not group:
                            continue
                        spec = group[0]
                        if spec.device == "gpu" and gpus == 0:  # Ray would wait for a GPU forever
                            yield from (failed_result(s, "device: gpu asked for, but the Ray cluster has no GPU; use device: cpu or auto",
                                                concurrency, "unsupported") for s in group)
                            continue
                        key = (spec.backend, spec.device)
                        if slot.actor is None or slot.key != key:
                            self._kill(slot)
                            slot.actor, slot.key = self._actor(spec.backend, spec.device, threads, gpus), key
                        slot.group, slot.ref = group, slot.actor.run.remote(group, concurrency)
                busy = {s.ref: s for s in self._slots if s.ref is not None}
                if not busy:
                    break
                ready, _ = ray.wait(list(busy), num_returns=1)
                for ref in ready:
                    slot = busy[ref]
                    group = slot.group or []
                    slot.ref = slot.group = None
                    yield from self._collect(ref, slot, group, concurrency)
        finally:
            for slot in self._slots:
                self._kill(slot)

    def _collect(self, ref: Any, slot: _Slot, group: list[RunSpec], concurrency: int) -> list[RunResult]:
        try:
            return ray.get(ref)
        except (rx.RayActorError, rx.WorkerCrashedError, rx.ObjectLostError) as exc:
            self._kill(slot)  # the actor is gone: the next group gets a fresh one
            log.warning("Ray worker died during runs %s: %s", [s.run_id for s in group], exit_cause(exc))
            return [failed_result(s, f"worker process died during the run ({exit_cause(exc)})", concurrency) for s in group]
        except rx.RayError as exc:  # an exception the worker did not turn into a result
            return [failed_result(s, exit_cause(exc), concurrency) for s in group]

    def _kill(self, slot: _Slot) -> None:
        if slot.actor is not None:
            try:
                ray.kill(slot.actor, no_restart=True)
            except Exception:  # already dead
                log.debug("ray.kill failed", exc_info=True)
        slot.actor = slot.key = slot.ref = slot.group = None

    def shutdown(self, kill: bool = False) -> None:
        for slot in self._slots:
            self._kill(slot)
        self._slots = []
        if self._started_here and ray.is_initialized():
            ray.shutdown()
            self._started_here = False
