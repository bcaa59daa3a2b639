"""The `scan` engine: a whole training epoch as one compiled JAX loop over Keras layers.

Keras 3's JAX trainer drops the state update of a stateful `fit` (a recurrent layer's state variables
are not among the model's tracked variables, which are all its stateless step returns), so this
engine threads the state explicitly: the run's own model (`bench.models`), called in a
`keras.StatelessScope` that maps its recurrent layers' state variables to values the loop carries
(see `Program`), and trained with the optimizer's `stateless_apply`. The carried state crosses
batches under `stop_gradient` (Keras's truncation: no gradient flows from one batch into the
previous one) and is zero at each epoch start. Runs that differ only in their seed and optimizer
values (a search's trials) train together under `jax.vmap` (`run_many`): the rate, betas, weight decay
and schedule live in optimizer variables (`bench.optimizers`), so each run carries its own.

Compiling an epoch costs seconds while training one costs milliseconds, so stateful and stateless
runs of one batch size share a compiled epoch: carrying the state is a runtime flag, and the
arrays are padded to the same shapes (see `run_many`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import operator
import time
from typing import Any
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from bench import kernels, noise_scale
from bench.engines import small_products
from bench.engines.loop import Budget, EpochLoop, calibration_rounds
from bench.model import build, describe, optimizer_key, seeded_note
from bench.optimizers import make_optimizer, values_of
from bench.models import ModelSpec, Shape
from bench.models.weights import draw
from bench.probe import ProbeResult
from bench.engines.base import Engine, register_engine
from bench.results import RunResult
from bench.runspec import RunSpec, trial_columns
from bench.windows import Prepared, Windows

log = logging.getLogger(__name__)

UNROLL_MAX_LOOK_BACK = 16
#: XLA options of the epoch on CPU. LLVM's level 1 compiles an epoch ~20% faster than the default with the
#: same speed after (compiling dominates a sweep of short runs). No YNNPACK fusions: XLA hands reductions and
#: products above a few thousand elements to YNNPACK, whose per-call cost made a step of 5 runs trained
#: together at batch 16 2.5x slower than at batch 8, and the 32- and 128-unit peer sizes ran ~20% faster
#: without it (docs/performance.md).
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1, "xla_cpu_experimental_ynn_fusion_type": ""}
#: Stateless walk-forward windows gathered at once (bounds its memory on long series).
PREDICT_CHUNK = 4096
#: XLA's CPU runtime runs a loop body's kernels one after another in the calling thread only when every
#: buffer they touch is at most this many bytes (`ThunkExecutor`'s `execute_sequential_buffer_threshold`,
#: not a flag); otherwise it schedules them as a task graph, at a fixed cost per kernel that dominates a
#: step of a few units. An epoch over a big series never qualifies, so small runs train through an inner loop
#: over chunks of steps whose windows are gathered first (`Program.chunking`): 1.6-1.9x at the seed's size
#: (docs/performance.md). A GPU runtime has no such rule: one flat loop there.
SEQUENTIAL_BYTES = 512
#: Fewest batches an epoch needs for the inner loop: it compiles ~0.7 s slower (4.1 s against 3.4 s at 4 units,
#: batch 2) and saves ~3 us a step, so short epochs (the tests', a quickstart's) keep the one flat loop.
CHUNK_MIN_STEPS = 1024
#: Most groups a step's rows are split into so its activations fit SEQUENTIAL_BYTES (each group is one more
#: forward and backward pass a step).
MAX_ROW_GROUPS = 4
Weights = list[np.ndarray]  # in `bench.model.build_model(spec, ...).get_weights()` order


@register_engine
class Scan(Engine):
    """A whole epoch as one jitted JAX loop; repeats of a configuration train together under `jax.vmap`."""

    name = "scan"
    backends = ("jax",)
    trains_together = True
    trains_together_across = trial_columns()
    measures_noise_scale = True

    def probe(self, backend: str) -> ProbeResult:
        return probe_scan()

    def run(self, specs: Sequence[RunSpec], prep: Prepared, windows: Windows) -> list[RunResult]:
        return run_many(specs, prep, windows)

    def unsupported_reason(self, spec: RunSpec) -> str | None:
        """The engine's probe on a stand-in, then the run's own model (`probe_model`)."""
        reason = super().unsupported_reason(spec)
        if reason or not spec.stateful:
            return reason
        result = probe_model(spec)
        if result.carries_state:
            return None
        return (
            f"stateful scan does not carry the state of this model ({result.detail}); give its recurrent layers "
            "stateful=stateful, or run it with stateful: false or engine: fit on tensorflow"
        )


def seeded_weights(spec: RunSpec) -> Weights:
    """The initial weights the `fit` engine gets for `spec` on any backend (`bench.model.seeded_model`).

    Runs that differ only in learning rate share a seed: drawing their weights once keeps a learning-rate
    grid from building the model once per rate."""
    return list(_seeded(spec)[0])


def weights_note(spec: RunSpec) -> str:
    """The run's note on initial weights the seed alone did not draw (empty for Keras's built-in initializers)."""
    return _seeded(spec)[1]


def _seeded(spec: RunSpec) -> tuple[tuple[np.ndarray, ...], str]:
    batch = spec.batch_size if spec.stateful else None
    return _seeded_weights(_shape_key(spec), spec.seed, batch, spec.stateful)


@functools.lru_cache(maxsize=512)
def _seeded_weights(key: tuple, seed: int, batch: int | None, stateful: bool) -> tuple[tuple[np.ndarray, ...], str]:
    import keras

    keras.utils.set_random_seed(seed)
    model = _build(key, batch, stateful, {})
    values, kept = draw(model, seed)
    return tuple(values), seeded_note(model, kept)


def _shape_key(spec: RunSpec) -> tuple:
    """What a run's model is built from, besides its batch size and statefulness."""
    return (spec.model, spec.look_back, spec.units, spec.layers, spec.dataset.n_features, spec.horizon)


def _build(key: tuple, batch: int | None, stateful: bool, extra: dict[str, Any]) -> Any:
    """The run's model (`bench.models`) from its `_shape_key`, with `extra` layer options."""
    model, look_back, units, layers, features, horizon = key
    return build(model, Shape(look_back, features, batch, stateful, units, layers, horizon), extra)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainState:
    """One run's training state as one JAX pytree (under `jax.vmap` every leaf gets the run axis):
    its weights, optimizer values (its learning rate among them), noise-scale state, and the values of
    the model's other non-trainable variables (dropout's seed generators, seeded per run)."""

    trainable: list[Any]
    opt: list[Any]
    noise: Any
    rng: list[Any]

    def apply_gradients(self, optimizer: Any, grads: list[Any], **changes: Any) -> TrainState:
        """The state after one optimizer step with `grads` (`changes`: the other fields this step replaced)."""
        trainable, opt = optimizer.stateless_apply(self.opt, grads, self.trainable)
        return dataclasses.replace(self, trainable=trainable, opt=opt, **changes)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunCarry:
    """What an epoch reads and hands back per run (under `jax.vmap`, the leading run axis of every leaf):
    its `TrainState`, its batch order `order` (steps, batch: rows of the training windows), and the
    recurrent `state` carried from batch to batch (zeros at an epoch's start)."""

    train: TrainState
    order: Any
    state: list[Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class EpochData:
    """What every run of an epoch shares (broadcast under `jax.vmap`): the `series` windows are cut from,
    the `targets`, each training row's target position `train_t`, the `mask` of real rows per batch,
    whether batches carry state (`stateful`, a runtime flag so stateful and stateless runs share one
    program), and the part of the epoch to run: batches `begin` to `end`."""

    series: Any
    targets: Any
    train_t: Any
    mask: Any
    stateful: Any
    begin: Any
    end: Any

    def span(self, begin: int, end: int) -> EpochData:
        """The same data for batches `begin` to `end` (runtime values: no new program)."""
        import jax.numpy as jnp

        return dataclasses.replace(self, begin=jnp.int32(begin), end=jnp.int32(end))


@functools.cache
def _register_pytrees() -> None:
    """Make the records JAX pytrees (here rather than at import: importing the engine stays free of JAX)."""
    import jax

    for record in (TrainState, RunCarry, EpochData):
        jax.tree_util.register_dataclass(record)


@dataclasses.dataclass(frozen=True)
class Chunking:
    """How an epoch's steps run (`Program.chunking`): `steps` at a time through an inner loop (1: one flat loop),
    each step's rows in `groups` of equal size whose gradients are summed."""

    steps: int = 1
    groups: int = 1


@dataclasses.dataclass(frozen=True)
class _Built:
    """One batch size's copy of the model (a stateful recurrent layer fixes its batch size) and the
    variables a stateless call maps: trainable, carried states, and the other non-trainable ones."""

    model: Any
    trainable: list[Any]
    states: list[Any]
    others: list[Any]
    other_values: list[Any]


class Program:
    """The jitted pieces for one model and optimizer: an epoch of training and the walk-forward.

    The run's own Keras model (`bench.models`), built stateful once per batch size it is called at,
    is called inside a `keras.StatelessScope` that maps its variables to explicit values: the weights
    being trained, and the recurrent layers' state variables, whose updated values the scope hands
    back. So any model whose recurrent layers keep their state in Keras's `states` carries it here,
    by Keras's own RNN code. Stateless runs start every batch from zeros (a runtime flag), so they
    share the compiled epoch. Trainable values, optimizer values and states are JAX pytrees (lists of
    arrays), so the same epoch function runs alone or under `jax.vmap` for several repeats.
    """

    def __init__(self, key: tuple, optimizer: tuple[str, bool, bool]) -> None:
        import jax

        _register_pytrees()
        self.key = key
        self.look_back = key[1]
        self.horizon = key[5]
        self._built: dict[int, _Built] = {}
        self.model = self.built(1).model
        # the rate, betas, schedule and the rest are values each run sets (`initial_values`), so one
        # program serves every trial of a search
        name, schedule, weight_decay = optimizer  # `bench.model.optimizer_key`
        self.optimizer = make_optimizer(name, schedule=schedule, weight_decay=weight_decay)
        self.optimizer.build(self.model.trainable_variables)
        paths = [v.path for v in self.model.weights]
        self.trainable_slots = [paths.index(v.path) for v in self.model.trainable_variables]
        self.fresh_optimizer = [v.value for v in self.optimizer.variables]  # zero moments, iteration 0
        names = [v.path.rsplit("/", 1)[-1] for v in self.optimizer.variables]
        # an optimizer's scalar values (`bench.optimizers`); its per-weight slots share a few names
        self.value_slots = {n: i for i, n in enumerate(names) if names.count(n) == 1 and n != "iteration"}
        on_cpu = jax.default_backend() == "cpu"
        self.compiler_options = CPU_COMPILER_OPTIONS if on_cpu else {}
        # small products fused into XLA's loops on CPU (`small_products`); a GPU runs every product as one kernel
        self.fuse_small_products = on_cpu
        self.chunked = on_cpu  # inner loops over chunks of steps (SEQUENTIAL_BYTES)
        self._epochs: dict[tuple[bool, bool], Any] = {}
        self._walks = {
            True: jax.jit(self._observing(("walk", True), self._walk)),
            False: jax.jit(self._observing(("walk", False), self._predict_all)),
        }
        self._kernels: dict[tuple, set[str]] = {}

    def built(self, batch: int) -> _Built:
        """The model at `batch` rows (built once; every copy has the same variables in the same order)."""
        if batch not in self._built:
            # unrolling short windows removes an inner while loop per step (~1.7x faster on CPU); long
            # ones would compile slowly
            model = _build(self.key, batch, True, {"unroll": self.look_back <= UNROLL_MAX_LOOK_BACK})
            states = [v for layer in model.layers if getattr(layer, "stateful", False) for v in layer.states or []]
            ids = {id(v) for v in [*model.trainable_variables, *states]}
            others = [v for v in model.variables if id(v) not in ids]
            self._built[batch] = _Built(
                model, list(model.trainable_variables), states, others, [v.value for v in others]
            )
        return self._built[batch]

    def _observing(self, key: tuple, fn: Callable) -> Callable:
        """`fn`, traced with small products fused on CPU, recording under `key` the LSTM kernels its layers
        choose and whether a product was fused (once per shape; later calls reuse the compiled program, so
        the record stays with the program)."""

        def traced(*args: Any, **kwargs: Any) -> Any:
            with kernels.observed() as seen, small_products.fused(self.fuse_small_products) as fused:
                out = fn(*args, **kwargs)
            self._kernels.setdefault(key, set()).update([*seen, *([small_products.NAME] if fused else [])])
            return out

        return traced

    def kernel(self, vmapped: bool, noise: bool, stateful: bool) -> str | None:
        """The kernels a run's epoch and walk-forward ran (`bench.kernels.describe`), once traced."""
        seen = [self._kernels.get(k) for k in (("epoch", vmapped, noise), ("walk", stateful))]
        return kernels.describe(set().union(*(s for s in seen if s is not None))) if seen[0] is not None else None

    def epoch_fn(self, vmapped: bool, noise: bool) -> Any:
        """The jitted epoch: alone or under `jax.vmap` (each `RunCarry` leaf gets a leading run axis, the
        `EpochData` is shared; every run passes an order, so shuffled and fixed orders share one program),
        with or without the noise-scale estimate (per-example gradients cost extra)."""
        import jax

        if (vmapped, noise) not in self._epochs:

            def fn(run: RunCarry, data: EpochData) -> tuple[RunCarry, Any]:
                epoch = functools.partial(self._epoch, noise_on=noise, chunk=self.chunking(run, data, noise))
                return (jax.vmap(epoch, in_axes=(0, None)) if vmapped else epoch)(run, data)

            fn = self._observing(("epoch", vmapped, noise), fn)
            self._epochs[vmapped, noise] = jax.jit(fn, compiler_options=self.compiler_options)
        return self._epochs[vmapped, noise]

    def chunking(self, run: RunCarry, data: EpochData, noise: bool = False) -> Chunking:
        """How `run`'s epoch runs (its leaves with the run axis when runs train together): as many steps a chunk
        as keep each chunk's windows, labels and masks within SEQUENTIAL_BYTES, where every carried value and a
        step's activations (rows x the widest weight) fit too, the rows split into up to MAX_ROW_GROUPS groups
        for that (not with the noise scale, whose per-row gradients never fit, nor for a model whose training
        pass changes its other variables: `keeps_others`); one flat loop otherwise."""
        import jax

        if not self.chunked or run.order.shape[-2] < CHUNK_MIN_STEPS:
            return Chunking()
        rows, batch = run.order[..., 0, :].size, run.order.shape[-1]  # rows of one step, over every run
        widest = max(leaf.shape[-1] for leaf in jax.tree_util.tree_leaves(run.train.trainable))
        carried = max(leaf.nbytes for leaf in jax.tree_util.tree_leaves((run.train, run.state)))
        groups = 1
        while not noise and rows // groups * widest * 4 > SEQUENTIAL_BYTES and groups < MAX_ROW_GROUPS:
            if batch % (2 * groups) or not self.keeps_others:
                break
            groups *= 2
        if max(carried, rows // groups * widest * 4) > SEQUENTIAL_BYTES:
            return Chunking()
        features = data.series.shape[-1] if data.series.ndim > 1 else 1
        per_step = rows // groups * max(self.look_back * features, self.horizon) * 4
        return Chunking(max(1, min(SEQUENTIAL_BYTES // per_step, run.order.shape[-2])), groups)

    @functools.cached_property
    def keeps_others(self) -> bool:
        """Whether a training pass leaves the model's other variables as they were (a seed generator no dropout
        draws from, but not dropout's, nor a normalisation's statistics): then a step's rows may run in groups
        and give the same result. Read from the traced pass: each such variable's value goes out as it came in."""
        import jax
        import jax.numpy as jnp

        b = self.built(1)
        x = jnp.zeros((1, self.look_back, self.key[4]), jnp.float32)
        trainable, state = [v.value for v in b.trainable], [v.value for v in b.states]
        traced = jax.make_jaxpr(lambda rng: self.forward(trainable, x, state, rng, training=True)[2])(b.other_values)
        return all(out is inp for out, inp in zip(traced.jaxpr.outvars, traced.jaxpr.invars))

    @property
    def epoch(self) -> Any:
        """One run's epoch without the noise scale."""
        return self.epoch_fn(False, False)

    def walk(self, stateful: bool) -> Callable[[list[Any], Any], Any]:
        """The walk-forward prediction of `stateful` (state carried window to window) or stateless runs."""
        return self._walks[stateful]

    def initial_values(self, weights: Weights, values: Mapping[str, float]) -> tuple[list[Any], list[Any]]:
        """(trainable values, fresh optimizer values set to `values`, `bench.optimizers.values_of`) starting
        from `weights` (`get_weights` order, as the `fit` engine's model has them)."""
        import jax.numpy as jnp

        shapes = [tuple(v.shape) for v in self.model.weights]
        if shapes != [np.shape(w) for w in weights]:
            raise ValueError(f"initial weights have shapes {[np.shape(w) for w in weights]}, the model needs {shapes}")
        opt = list(self.fresh_optimizer)
        for name, value in values.items():
            if name in self.value_slots:
                i = self.value_slots[name]
                opt[i] = jnp.asarray(value, opt[i].dtype)
        for beta in ("beta_1", "beta_2"):  # Keras's 1 - beta in double precision (`bench.optimizers.RuntimeAdam`)
            if beta in values and f"one_minus_{beta}" in self.value_slots:
                i = self.value_slots[f"one_minus_{beta}"]
                opt[i] = jnp.asarray(1.0 - values[beta], opt[i].dtype)
        return [jnp.asarray(weights[i], jnp.float32) for i in self.trainable_slots], opt

    def train_state(self, weights: Weights, values: Mapping[str, float], seed: int, noise_on: bool) -> TrainState:
        """A run's starting `TrainState`: `initial_values`, a fresh noise-scale state when asked, and its
        dropout generators seeded from the run's `seed`."""
        import jax.numpy as jnp

        trainable, opt = self.initial_values(weights, values)
        b = self.built(1)
        rng = [
            jnp.asarray([(seed + 7919 * i) & 0x7FFFFFFF, 0], jnp.uint32)
            if v.path.endswith("seed_generator_state")
            else value
            for i, (v, value) in enumerate(zip(b.others, b.other_values))
        ]
        return TrainState(trainable=trainable, opt=opt, noise=noise_scale.init(trainable) if noise_on else (), rng=rng)

    def zero_state(self, batch: int) -> list[Any]:
        import jax.numpy as jnp

        return [jnp.zeros(tuple(v.shape), jnp.float32) for v in self.built(batch).states]

    def forward(
        self, trainable: list[Any], x: Any, state: list[Any], rng: list[Any] | None = None, training: bool = False
    ) -> tuple[Any, list[Any], list[Any]]:
        """Predictions, the recurrent layers' final states and the generators' next values for windows `x`
        (batch, look_back, features) from `state` (`rng`: the other non-trainable values, the program's
        own when None; `training`: dropout on)."""
        import keras

        b = self.built(int(x.shape[0]))
        rng = b.other_values if rng is None else rng
        mapping = [*zip(b.trainable, trainable), *zip(b.states, state), *zip(b.others, rng)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            outputs = b.model(x, training=training)
        return outputs, [scope.get_current_value(v) for v in b.states], [scope.get_current_value(v) for v in b.others]

    def _epoch(
        self, run: RunCarry, data: EpochData, *, noise_on: bool = False, chunk: Chunking = Chunking()
    ) -> tuple[RunCarry, Any]:
        """One epoch, or the part of it from batch `data.begin` (from the recurrent state `run.state` it left
        off at) to batch `data.end`: batch k holds rows `run.order[k]` (`data.mask` 0 marks padding). Row j
        is the window ending before target `train_t[j]`, gathered from `series` inside the loop (nothing is
        materialised), with labels `targets[train_t[j]:][:horizon]`. Returns the run carried on (trained
        state, final recurrent state) and the loss.

        Batches with no real rows come last and are not run: the loop's length is a runtime value,
        so it costs nothing per step, and a step budget's partial last epoch is the same program.
        `stateful` (a boolean array) says whether each batch starts from the previous batch's final
        state or from zeros. The loss is what Keras `fit` logs: per-batch MSE averaged over the
        batches run, weighted by their sizes (a row's error is its mean over the horizon). With `noise_on`
        the gradient is the mean of per-example gradients (each row from its own carried state), which also
        feed the noise-scale estimate. With `chunk.steps` > 1 the batches run that many at a time, their windows
        gathered before an inner loop (SEQUENTIAL_BYTES): the same steps in the same order; with `chunk.groups`
        > 1 a step's rows run in that many groups whose losses and gradients are summed (the same sums, added
        in another order: equal to float precision).
        """
        import jax
        import jax.numpy as jnp

        idx, mask, series, targets, train_t = run.order, data.mask, data.series, data.targets, data.train_t
        n_steps, batch = idx.shape
        sizes = jnp.sum(mask, axis=1)
        min_rows = noise_scale.big_rows(batch)

        def row_loss(tv_: list[Any], x: Any, y: Any, state: list[Any], rng: list[Any]) -> tuple[Any, tuple]:
            pred, new_state, new_rng = self.forward(tv_, x[None], [s[None] for s in state], rng, training=True)
            return jnp.mean(jnp.square(pred[0] - y)), ([s[0] for s in new_state], new_rng)

        def step(t: TrainState, state: list[Any], x: Any, y: Any, m: Any, size: Any) -> tuple:
            """One batch: windows `x`, labels `y`, real rows `m` (`size` of them)."""
            ns = t.noise
            if noise_on:
                per_row = jax.vmap(jax.value_and_grad(row_loss, has_aux=True), in_axes=(None, 0, 0, 0, None))
                (row_losses, (new_state, rngs)), per_example = per_row(t.trainable, x, y, state, t.rng)
                rng = jax.tree_util.tree_map(lambda r: r[0], rngs)  # the generators advance once per step
                loss = jnp.sum(row_losses * m) / size
                grads = jax.tree_util.tree_map(lambda g: jnp.tensordot(m, g, axes=1) / size, per_example)
                ns = noise_scale.update(ns, per_example, m, min_rows)
            else:

                def loss_fn(tv_: list[Any], x: Any, y: Any, m: Any, state: list[Any]) -> tuple[Any, tuple]:
                    pred, new_state, rng = self.forward(tv_, x, state, t.rng, training=True)
                    return jnp.sum(jnp.mean(jnp.square(pred - y), axis=1) * m) / size, (new_state, rng)

                value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)
                if isinstance(x, tuple):  # row groups, each its own small buffers
                    r = batch // len(x)
                    parts = [value_and_grad(t.trainable, *g, [s[i * r : (i + 1) * r] for s in state])
                             for i, g in enumerate(zip(x, y, m))]  # fmt: skip
                    loss = functools.reduce(operator.add, [p[0][0] for p in parts])
                    grads = jax.tree_util.tree_map(lambda *g: functools.reduce(operator.add, g), *[p[1] for p in parts])
                    new_state = [jnp.concatenate(s) for s in zip(*[p[0][1][0] for p in parts])]
                    rng = t.rng  # a pass leaves them as they were (`keeps_others`)
                else:
                    (loss, (new_state, rng)), grads = value_and_grad(t.trainable, x, y, m, state)
            t = t.apply_gradients(self.optimizer, grads, noise=ns, rng=jax.lax.stop_gradient(rng))
            # stateful: batch k's final state starts batch k+1, without a gradient path back (Keras's truncation)
            state = [jnp.where(data.stateful, jax.lax.stop_gradient(n), s) for n, s in zip(new_state, state)]
            return t, state, loss

        steps = jnp.minimum(jnp.sum(sizes > 0), data.end)
        start = (run.train, run.state)
        chunk, groups = chunk.steps, chunk.groups
        if chunk == 1:

            def one(k: Any, carry: tuple) -> tuple:
                t, state, losses = carry
                rows = train_t[idx[k]]
                t, state, loss = step(
                    t, state, self.gather(series, rows), self.labels(targets, rows), mask[k], sizes[k]
                )
                return t, state, losses.at[k].set(loss)

            train, state, losses = jax.lax.fori_loop(data.begin, steps, one, (*start, jnp.zeros(n_steps, jnp.float32)))
        else:
            chunks = -(-n_steps // chunk)
            pad = chunks * chunk - n_steps
            idx_c = jnp.pad(idx, ((0, pad), (0, 0))).reshape(chunks, chunk, batch)
            mask_c = jnp.pad(mask, ((0, pad), (0, 0))).reshape(chunks, chunk, batch)
            sizes_c = jnp.pad(sizes, (0, pad), constant_values=1.0).reshape(chunks, chunk)

            def outer(c: Any, carry: tuple) -> tuple:
                t, state, losses = carry
                rows = train_t[idx_c[c]]
                xs, ys, ms, ss = self.gather(series, rows), self.labels(targets, rows), mask_c[c], sizes_c[c]
                if groups > 1:  # one buffer per group of rows: each within SEQUENTIAL_BYTES
                    r = batch // groups
                    xs, ys, ms = (tuple(a[:, i * r : (i + 1) * r] for i in range(groups)) for a in (xs, ys, ms))

                def inner(j: Any, inner_carry: tuple) -> tuple:
                    t, state, part = inner_carry
                    at = (lambda a: tuple(g[j] for g in a)) if groups > 1 else (lambda a: a[j])
                    t, state, loss = step(t, state, at(xs), at(ys), at(ms), ss[j])
                    return t, state, part.at[j].set(loss)

                lo, hi = jnp.maximum(data.begin - c * chunk, 0), jnp.minimum(steps - c * chunk, chunk)
                t, state, part = jax.lax.fori_loop(lo, hi, inner, (t, state, jnp.zeros(chunk, jnp.float32)))
                return t, state, jax.lax.dynamic_update_slice_in_dim(losses, part, c * chunk, 0)

            first, last = data.begin // chunk, -(-steps // chunk)
            train, state, losses = jax.lax.fori_loop(
                first, last, outer, (*start, jnp.zeros(chunks * chunk, jnp.float32))
            )
            losses = losses[:n_steps]
        k = jnp.arange(n_steps)
        ran = jnp.where((k >= data.begin) & (k < steps), sizes, 0.0)
        return dataclasses.replace(run, train=train, state=state), jnp.sum(losses * ran) / jnp.sum(ran)

    def gather(self, series: Any, t: Any) -> Any:
        """The windows ending before targets `t`: (len(t), look_back, features)."""
        import jax.numpy as jnp

        return series[t[..., None] + jnp.arange(-self.look_back, 0)]

    def labels(self, targets: Any, t: Any) -> Any:
        """The labels of targets `t`: (len(t), horizon)."""
        import jax.numpy as jnp

        return targets[t[..., None] + jnp.arange(self.horizon)]

    def _walk(self, trainable: list[Any], series: Any, walk_t: Any) -> Any:
        """Batch-1 walk-forward from a zero state, the state carried window to window: (n, horizon)."""
        import jax

        def step(state: list[Any], t: Any) -> tuple[list[Any], Any]:
            x = jax.lax.dynamic_slice_in_dim(series, t - self.look_back, self.look_back, axis=0)
            pred, state, _ = self.forward(trainable, x[None], state)
            return state, pred[0]

        _, preds = jax.lax.scan(step, self.zero_state(1), walk_t)
        return preds

    def _predict_all(self, trainable: list[Any], series: Any, walk_t: Any) -> Any:
        """Stateless prediction: every window from a zero state, PREDICT_CHUNK windows at a time: (n, horizon)."""
        import jax
        import jax.numpy as jnp

        n = walk_t.shape[0]
        chunk = min(PREDICT_CHUNK, n)
        chunks = -(-n // chunk)
        padded = jnp.pad(walk_t, (0, chunks * chunk - n), mode="edge").reshape(chunks, chunk)

        def one(t: Any) -> Any:
            pred, _, _ = self.forward(trainable, self.gather(series, t), self.zero_state(chunk))
            return pred

        return jax.lax.map(one, padded).reshape(-1, self.horizon)[:n]


def program_for(spec: RunSpec) -> Program:
    """The program for `spec`'s model shape and optimizer, shared by every run in this worker that
    has them: jitted functions compile once per input shape, so the batch-1 walk and repeated batch
    sizes are not compiled again for each configuration of a sweep."""
    return _program(_shape_key(spec), optimizer_key(spec))


@functools.lru_cache(maxsize=64)
def _program(key: tuple, optimizer: tuple[str, bool, bool]) -> Program:
    return Program(key, optimizer)


def _batches(
    n: int, batch_size: int, stateful: bool, order: np.ndarray | None, steps: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (steps, batch) and a mask of real rows: the last partial batch, and any batches
    past `steps` of the rows, are padding."""
    rows = np.arange(n) if order is None else order
    steps = -(-n // batch_size) if steps is None else steps
    if stateful and n % batch_size:
        raise ValueError(f"stateful windows ({n}) must be a multiple of batch_size {batch_size}")
    if steps * batch_size < n:
        raise ValueError(f"{steps} batches of {batch_size} cannot hold {n} windows")
    idx = np.zeros(steps * batch_size, np.int32)
    idx[:n] = rows
    mask = np.zeros(steps * batch_size, np.float32)
    mask[:n] = 1.0
    return idx.reshape(steps, batch_size), mask.reshape(steps, batch_size)


def epoch_data(spec: RunSpec, windows: Windows) -> EpochData:
    """The device arrays every run of `spec`'s configuration shares, for a whole epoch.

    Their shapes are shared by stateful and stateless runs of one look_back and batch size, so both use one
    compiled epoch: a row for every training window (stateful runs drop some), and the batches a stateless
    epoch needs (a stateful one may end with a batch of padding, which is skipped). Padding rows point at a
    real target; the mask keeps them out of the loss."""
    import jax
    import jax.numpy as jnp

    n = windows.n_train_windows
    rows = n + windows.n_dropped
    steps = -(-rows // spec.batch_size)
    _, mask = _batches(n, spec.batch_size, spec.stateful, None, steps)
    train_t = np.pad(windows.train_t, (0, rows - n), mode="edge")
    series, targets, train_t, mask = (jax.device_put(a) for a in (windows.series, windows.targets, train_t, mask))
    return EpochData(
        series=series,
        targets=targets,
        train_t=train_t,
        mask=mask,
        stateful=jnp.asarray(spec.stateful),
        begin=jnp.int32(0),
        end=jnp.int32(steps),
    )


def batch_order(spec: RunSpec, windows: Windows, data: EpochData, rng: np.random.Generator | None = None) -> np.ndarray:
    """The rows of each batch of an epoch over `data` (steps, batch): in time order, or shuffled by `rng`."""
    n, steps = windows.n_train_windows, int(data.mask.shape[0])
    if rng is None:
        return _batches(n, spec.batch_size, spec.stateful, None, steps)[0]
    return _batches(n, spec.batch_size, False, rng.permutation(n), steps)[0]


def stack(trees: Sequence[Any]) -> Any:
    """Pytrees of equal structure -> one pytree with a leading axis (the vmapped repeats)."""
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def run(spec: RunSpec, prep: Prepared, windows: Windows, initial_weights: Weights | None = None) -> RunResult:
    """Train and evaluate one run; `initial_weights` overrides the seeded ones (cross-backend checks)."""
    return run_many([spec], prep, windows, None if initial_weights is None else [initial_weights])[0]


def run_many(
    specs: Sequence[RunSpec], prep: Prepared, windows: Windows, initial_weights: Sequence[Weights] | None = None
) -> list[RunResult]:
    """Train runs of one configuration but their seeds and optimizer values together (one vmapped
    program when there are several; runs whose optimizers compile differently, `optimizer_key`, one
    such program after another).

    Each result's epoch times are the shared wall time of the vmapped epoch; each run keeps its
    own initial weights, optimizer values, shuffle order, losses, evaluation and divergence.
    """
    if not specs:
        return []
    key = specs[0].group_key(Scan.trains_together_across)
    if any(s.group_key(Scan.trains_together_across) != key for s in specs):
        raise ValueError(
            "run_many trains runs that differ only in seed, repeat and optimizer values; these differ more"
        )
    programs: dict[tuple, list[int]] = {}
    for i, s in enumerate(specs):
        programs.setdefault(optimizer_key(s), []).append(i)
    results: list[RunResult | None] = [None] * len(specs)
    for picked in programs.values():
        weights = None if initial_weights is None else [initial_weights[i] for i in picked]
        for i, result in zip(picked, _run_together([specs[i] for i in picked], prep, windows, weights)):
            results[i] = result
    return results  # type: ignore[return-value]


def _run_together(
    specs: Sequence[RunSpec], prep: Prepared, windows: Windows, initial_weights: Sequence[Weights] | None
) -> list[RunResult]:
    """`run_many` for runs of one compiled program."""
    import jax

    first = specs[0]
    k = len(specs)
    weights = list(initial_weights) if initial_weights is not None else [seeded_weights(s) for s in specs]
    program = program_for(first)
    budget = Budget.of(first, windows)
    starts = [
        program.train_state(w, values_of(s, budget.total_steps), s.seed, s.noise_scale) for w, s in zip(weights, specs)
    ]
    rngs = [np.random.default_rng(s.seed) for s in specs]
    data = epoch_data(first, windows)
    walk = program.walk(first.stateful)
    epoch_fn = program.epoch_fn(vmapped=k > 1, noise=first.noise_scale)

    def together(trees: list[Any]) -> Any:
        """One run's pytree alone, or the runs' stacked on a leading axis for vmap, on the device: the
        carry an epoch hands back is, and host arrays in its place would add a second entry to the
        jitted function's dispatch cache."""
        return jax.device_put(trees[0]) if k == 1 else stack(trees)

    # every run passes a batch order, so shuffled and fixed orders share one program
    fixed = batch_order(first, windows, data)
    zeros = together([program.zero_state(first.batch_size)] * k)
    carry = RunCarry(train=together(starts), order=together([fixed] * k), state=zeros)
    if k > 1:
        log.info("scan: training %d runs of %s together (vmap)", k, first.run_id)

    walk_t = jax.device_put(windows.walk_t)

    def walk_of(r: int) -> Any:
        # slicing device arrays one by one costs ~0.5 ms each; the host copies are tiny
        trainable = carry.train.trainable if k == 1 else [np.asarray(t)[r] for t in carry.train.trainable]
        return walk(trainable, data.series, walk_t)

    loops = [EpochLoop(s, prep, windows, lambda r=r: np.asarray(walk_of(r))) for r, s in enumerate(specs)]
    rows_in = np.asarray(data.mask).sum(axis=1)  # real rows per batch
    compiled_before = _compiled(epoch_fn)
    compiled_here: bool | None = None
    running = list(range(k))
    for epoch in range(1, budget.epochs + 1):
        order = together([batch_order(first, windows, data, rng) for rng in rngs]) if first.shuffle else carry.order
        carry = dataclasses.replace(carry, order=order, state=zeros)
        # the epoch runs in parts ending where a run evaluates (every `eval_every` steps), clocks stopped there
        bounds = [*loops[0].eval_points(epoch), budget.steps_in(epoch)]
        begin, total, weight = 0, np.zeros(k), 0.0
        t0 = time.perf_counter()
        for end in bounds:
            carry, loss = epoch_fn(carry, data.span(begin, end))
            jax.block_until_ready(carry)
            seconds = time.perf_counter() - t0
            rows_run = float(rows_in[begin:end].sum())
            total, weight = total + np.asarray(loss, np.float64).reshape(k) * rows_run, weight + rows_run
            if end < bounds[-1]:
                for r in running:
                    loops[r].mid_epoch(end, seconds=seconds)
                t0 = time.perf_counter()
            begin = end
        if compiled_here is None:
            after = _compiled(epoch_fn)
            compiled_here = None if after is None or compiled_before is None else after > compiled_before
        losses = total / weight if weight else total
        scales = np.asarray(noise_scale.value(carry.train.noise)).reshape(k) if first.noise_scale else [None] * k
        for r in list(running):
            if loops[r].end_epoch(float(losses[r]), seconds=seconds, noise_scale=scales[r]):
                running.remove(r)
        if not running:
            break

    def time_round() -> float:
        """One whole epoch of the compiled program from the trained values; its outputs are dropped, so
        nothing a run recorded changes (JAX arrays are immutable)."""
        t = time.perf_counter()
        out = epoch_fn(dataclasses.replace(carry, state=zeros), data.span(0, budget.steps_per_epoch))
        jax.block_until_ready(out)
        return time.perf_counter() - t

    ok = [r for r in range(k) if loops[r].diverged_epoch is None]
    extra = calibration_rounds(loops[ok[0]].steady_rounds(), time_round) if ok else []
    results = [loop.result(trained_together=k, extra_rounds=extra, compiled_here=compiled_here) for loop in loops]
    kernel = program.kernel(k > 1, first.noise_scale, first.stateful)
    n_params, summary = describe(program.model)
    notes = [weights_note(s) if initial_weights is None else "" for s in specs]
    return [
        dataclasses.replace(
            r, kernel=kernel, n_params=n_params, model_summary=summary, notes="; ".join(x for x in (r.notes, n) if x)
        )
        for r, n in zip(results, notes)
    ]


def _compiled(fn: Any) -> int | None:
    """How many programs a jitted function holds (None where JAX does not say)."""
    size = getattr(fn, "_cache_size", None)
    return size() if callable(size) else None


@functools.cache
def probe_scan() -> ProbeResult:
    """Train a tiny stateful model one epoch of four batches with this engine; check the state is carried."""
    import keras

    if keras.backend.backend() != "jax":
        return ProbeResult(
            "jax", "scan", False, f"this process runs backend {keras.backend.backend()}, the scan engine needs jax"
        )
    keras.utils.set_random_seed(0)
    program = Program((ModelSpec(), 2, 2, 1, 1, 1), ("adam", False, False))
    train = program.train_state(program.model.get_weights(), {"learning_rate": 0.01}, 0, False)
    series = np.linspace(0.1, 0.9, 9, dtype=np.float32)[:, None]
    x = series[:8].reshape(4, 2, 1)  # the windows ending before targets 2, 4, 6, 8
    idx, mask = _batches(4, 1, True, None)
    data = EpochData(
        series=series,
        targets=np.ones(9, np.float32),
        train_t=np.arange(2, 10, 2),
        mask=mask,
        stateful=np.bool_(True),
        begin=np.int32(0),
        end=np.int32(4),
    )
    trained, _ = program.epoch(RunCarry(train=train, order=idx, state=program.zero_state(1)), data)
    train, state = trained.train, trained.state
    carried = float(sum(np.abs(np.asarray(s)).sum() for s in state))
    from_state, _, _ = program.forward(train.trainable, x[:1], state)
    from_zero, _, _ = program.forward(train.trainable, x[:1], program.zero_state(1))
    problems = []
    if carried == 0.0:
        problems.append("the carried LSTM state is zero after a stateful epoch")
    if np.array_equal(np.asarray(from_state), np.asarray(from_zero)):
        problems.append("predicting from the carried state equals predicting from a zero state")
    detail = (
        "; ".join(problems)
        if problems
        else f"carried state |h|+|c| = {carried:.4f}; prediction from it differs from a zero state's"
    )
    return ProbeResult("jax", "scan", not problems, f"{detail}; LSTM kernel: {program.kernel(False, False, True)}")


def probe_model(spec: RunSpec) -> ProbeResult:
    """Whether this engine carries the state of `spec`'s own model: two windows from a zero state leave a
    non-zero carried state, and a window predicted from it differs from the same window from zeros."""
    return _probe_model(_shape_key(spec), optimizer_key(spec))


@functools.lru_cache(maxsize=64)
def _probe_model(key: tuple, optimizer: tuple[str, bool, bool]) -> ProbeResult:
    import jax.numpy as jnp

    program = _program(key, optimizer)
    label = key[0].label
    if not program.built(1).states:
        return ProbeResult(
            "jax", "scan", False, f"model {label} has no stateful recurrent layer whose state Keras keeps in `states`"
        )
    trainable, _ = program.initial_values(program.model.get_weights(), {})
    look_back, features = key[1], key[4]
    x = jnp.linspace(0.1, 0.9, 2 * look_back * features, dtype=jnp.float32).reshape(2, 1, look_back, features)
    _, state, _ = program.forward(trainable, x[0], program.zero_state(1))
    carried = float(sum(jnp.abs(s).sum() for s in state))
    from_state = program.forward(trainable, x[1], state)[0]
    from_zero = program.forward(trainable, x[1], program.zero_state(1))[0]
    if carried == 0.0 or bool(jnp.array_equal(from_state, from_zero)):
        return ProbeResult("jax", "scan", False, f"model {label}: the state after a window is zero or has no effect")
    return ProbeResult("jax", "scan", True, f"model {label}: carried state {carried:.4f}, and predictions depend on it")
