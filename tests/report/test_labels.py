"""Labels people can read: datasets that share a name are told apart by what differs, never by JSON or a hash."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.datasets import DatasetSpec
from bench.report.load import distinct_dataset_labels, load_results
from report_fixtures import save, synthetic_results


def test_datasets_sharing_a_label_are_named_by_what_differs():
    macro = {"column": "unemp", "sha256": "d93c0d3a7a77ef83"}
    params = [
        json.dumps({**macro, "features": ["unemp", "infl", "tbilrate"]}),
        json.dumps(macro),
        json.dumps({**macro, "sha256": "0123456789abcdef"}),
    ]
    labels = distinct_dataset_labels(pd.Series(["macrodata:unemp"] * 3), pd.Series(params))
    assert labels == [
        "macrodata:unemp +infl,tbilrate",
        "macrodata:unemp univariate version 2",  # the same keys, another file content
        "macrodata:unemp univariate version 3",
    ]


def test_inputs_every_variant_has_are_left_out_of_the_label():
    """Built-in series name no target in their parameters: what one variant adds over the others is shown."""
    params = [json.dumps({"length": 1000, "features": ["y", "x"]}), json.dumps({"length": 1000, "features": ["y"]})]
    labels = distinct_dataset_labels(pd.Series(["lagged_covariate"] * 2), pd.Series(params))
    assert labels == ["lagged_covariate +x", "lagged_covariate univariate"]


def test_a_report_of_two_sine_waves_labels_them_by_period(tmp_path: Path):
    runs = [
        *synthetic_results(failed=False, diverged=False, dataset=DatasetSpec("sine", json.dumps({"period": 12}))),
        *synthetic_results(failed=False, diverged=False, dataset=DatasetSpec("sine", json.dumps({"period": 24}))),
    ]
    results = load_results(save(tmp_path / "r", runs))
    assert set(results.runs["dataset"]) == {"sine period=12", "sine period=24"}
    assert not results.runs["panel"].str.contains('[{}"]').any()
    assert set(results.runs["panel"]) == {"dataset=sine period=12", "dataset=sine period=24"}


def test_long_panel_titles_wrap_inside_their_panel_and_the_figure(tmp_path: Path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bench.report.figures import rmse_by_batch_size

    features = ["unemp", "infl", "tbilrate", "realgdp", "realcons", "realinv", "cpi", "m1"]
    runs = [
        *synthetic_results(failed=False, diverged=False, dataset=DatasetSpec("sine", json.dumps({"period": 12}))),
        *synthetic_results(
            failed=False,
            diverged=False,
            dataset=DatasetSpec("sine", json.dumps({"period": 12, "features": features, "column": "unemp"})),
        ),  # fmt: skip
        *synthetic_results(failed=False, diverged=False, dataset=DatasetSpec("sine", json.dumps({"period": 24}))),
    ]
    fig = rmse_by_batch_size(load_results(save(tmp_path / "r", runs)))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    page = fig.bbox
    titles = [ax.title for ax in fig.axes if ax.get_visible() and ax.title.get_text()]
    assert len(titles) == 3 and any("\n" in t.get_text() for t in titles)  # the long one wrapped
    boxes = [t.get_window_extent(renderer) for t in titles]
    for box in boxes:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_the_rmse_figure_draws_the_same_dots_every_time(tmp_path: Path):
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bench.report.figures import rmse_by_batch_size

    results = load_results(save(tmp_path / "r", synthetic_results(failed=False, diverged=False)))

    def pixels() -> np.ndarray:
        canvas = FigureCanvasAgg(rmse_by_batch_size(results))
        canvas.draw()
        np.random.random(7)  # the global generator moves between reports
        return np.asarray(canvas.buffer_rgba()).copy()

    assert np.array_equal(pixels(), pixels())
