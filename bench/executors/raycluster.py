"""The Ray executor: each worker slot is a Ray actor serving one (backend, device) pair.

Like the local executor's worker processes, an actor is reused for consecutive groups of its
pair and replaced when it dies (killed, out of memory, segfault, its node lost): the group it held
fails with the cause and the suite goes on. Actors get their backend's environment (and hidden
GPUs for CPU runs) through their runtime environment before anything imports Keras, and call
`init_worker` in their constructor. GPU runs ask Ray for `num_gpus=1`. Results stream back with
`ray.wait`; the driver commits them one by one. Every node needs lstm-bench installed (same version).

A cluster that loses a node has fewer CPUs: the slots shrink to what it still has, and an actor
that cannot be placed (its group waits for resources that are gone) is given up and its group
queued for the remaining slots, so a suite never waits for a node that will not come back.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import ray
from ray import exceptions as rx

from bench import registry
from bench.errors import UserError
from bench.executors import TEST_HOOKS, Slot, SlotExecutor, apply_test_hooks, failed_result
from bench.registry import PLUGINS_ENV
from bench.results import RunResult
from bench.runspec import RunSpec
from bench.worker import execute_group, init_worker
from bench.vocabulary import UNSUPPORTED

log = logging.getLogger(__name__)

#: Object store of a Ray instance started here: results are small, so keep it small.
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
#: How often a wait for results looks at the cluster's resources (a lost node shows there).
POLL_SECONDS = 2.0


class BenchActor:
    """Lives in a Ray worker process; configured for one backend and device at construction."""

    def __init__(self, backend: str, device: str, threads: int | None) -> None:
        init_worker(backend, device, threads)

    def run(self, group: list[RunSpec], concurrency: int) -> list[RunResult]:
        apply_test_hooks(group)
        return execute_group(group, concurrency)

    def pid(self) -> int:
        return os.getpid()


@dataclass(eq=False)
class _Slot(Slot):
    actor: Any = None
    ready: Any = None  # resolves once the actor is placed and constructed
    ref: Any = None


def _check_reachable(address: str, given: str) -> None:
    """Fail fast on a HOST:PORT nobody answers at (Ray itself retries for minutes); `given` names where
    the address came from."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "auto", ray:// client addresses: left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise UserError(
            f"{given}: nothing answers there ({exc.strerror or exc}); "
            "check the address that 'ray start --head' printed and that the head node is up"
        ) from None


def _placed(slot: _Slot) -> bool:
    """Whether the slot's actor has a place in the cluster (it may still be starting)."""
    try:
        from ray._private import state  # the actor table; private, so a fallback below

        return state.actors(actor_id=slot.actor._actor_id.hex()).get("State") != "PENDING_CREATION"
    except Exception:  # an actor that has answered has certainly been placed
        return bool(ray.wait([slot.ready], timeout=0)[0])


class RayExecutor(SlotExecutor):
    """Runs groups as calls on Ray actors; `workers` slots (default: the cluster's CPUs)."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers
        self.slots: list[Slot] = []
        self._started_here = False
        self._threads = 1

    def connect(self) -> None:
        """Join the cluster (or start a local instance); an address that does not answer is a user error."""
        # Ray itself would join the cluster RAY_ADDRESS names, or the last one `ray start` recorded under
        # /tmp/ray even after it stopped; only the first is the user's choice
        given = f"--ray-address {self.address}"
        if not self.address and os.environ.get("RAY_ADDRESS"):
            self.address = os.environ["RAY_ADDRESS"]
            given = f"RAY_ADDRESS={self.address}"
        if self.address:
            _check_reachable(self.address, given)
        if ray.is_initialized():
            return
        kw: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING)
        if self.address:
            try:
                ray.init(address=self.address, **kw)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                detail = " ".join(str(exc).split())[:200]
                raise UserError(
                    f"{given}: cannot join the Ray cluster ({detail}); "
                    "check the address that 'ray start --head' printed"
                ) from None
        else:
            cpus = len(os.sched_getaffinity(0))
            ray.init(
                address="local",
                num_cpus=max(cpus, self.workers or 1),
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                **kw,
            )
            self._started_here = True

    @staticmethod
    def _resources() -> tuple[int, int]:
        res = ray.cluster_resources()
        return int(res.get("CPU", 0)), int(res.get("GPU", 0))

    def slot_count(self, groups: int) -> int:
        self.connect()
        return max(1, min(self.workers or self._resources()[0], groups))

    def new_slots(self, n: int) -> list[Slot]:
        self._threads = max(1, self._resources()[0] // n)
        return [_Slot() for _ in range(n)]

    def capacity(self) -> int:
        return self._resources()[0] // self._threads

    def _excess(self) -> int:
        """How many slots more than the cluster can place now (CPUs, and GPUs for GPU slots)."""
        cpus, gpus = self._resources()
        gpu_slots = sum(1 for s in self.slots if s.key is not None and s.key[1] == "gpu")
        return max(len(self.slots) - cpus // self._threads, gpu_slots - gpus)

    def _actor(self, backend: str, device: str) -> Any:
        env = registry.backend(backend).environment(device, self._threads)
        env.update({k: os.environ[k] for k in (*TEST_HOOKS, PLUGINS_ENV) if k in os.environ})
        cls = ray.remote(BenchActor).options(
            num_cpus=self._threads,
            num_gpus=1 if device == "gpu" else 0,
            max_restarts=0,
            max_task_retries=0,
            runtime_env={"env_vars": env},
        )
        return cls.remote(backend, device, self._threads)

    def start(self, slot: Slot, group: list[RunSpec]) -> list[RunResult] | None:
        assert isinstance(slot, _Slot)
        spec = group[0]
        if spec.device == "gpu" and self._resources()[1] == 0:  # Ray would wait for a GPU forever
            return [
                failed_result(
                    s,
                    "device: gpu asked for, but the Ray cluster has no GPU; use device: cpu or auto",
                    self.concurrency,
                    UNSUPPORTED,
                )
                for s in group
            ]
        key = (spec.backend, spec.device)
        if slot.actor is None or slot.key != key:
            self.stop(slot)
            slot.actor, slot.key = self._actor(spec.backend, spec.device), key
            slot.ready = slot.actor.pid.remote()
        slot.group, slot.ref = group, slot.actor.run.remote(group, self.concurrency)
        return None

    def wait(self, busy: list[Slot]) -> tuple[list[Slot], list[Slot]]:
        refs = {s.ref: s for s in busy if isinstance(s, _Slot)}
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_SECONDS)
        if ready:
            return [refs[r] for r in ready], []
        # nothing finished: an actor that is still not placed while the cluster has no room for
        # every slot waits for resources that are gone (a lost node); give its group to the others
        excess = self._excess()
        if excess <= 0:
            return [], []
        return [], [s for s in refs.values() if not _placed(s)][:excess]

    def collect(self, slot: Slot) -> list[RunResult]:
        assert isinstance(slot, _Slot)
        group, ref = slot.group or [], slot.ref
        slot.ref = None
        try:
            return ray.get(ref)
        except rx.RayError as exc:  # the actor died (its process or its node), or raised past execute_group
            return self.worker_died(slot, group, exc)

    def stop(self, slot: Slot, kill: bool = False) -> None:
        assert isinstance(slot, _Slot)
        if slot.actor is not None:
            try:
                ray.kill(slot.actor, no_restart=True)
            except Exception:  # already dead
                log.debug("ray.kill failed", exc_info=True)
        slot.actor = slot.key = slot.ref = slot.ready = None

    def shutdown(self, kill: bool = False) -> None:
        super().shutdown(kill)
        if self._started_here and ray.is_initialized():
            ray.shutdown()
            self._started_here = False
