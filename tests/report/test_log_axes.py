"""Log axes a reader can read: at least three labelled ticks on the data, none overlapping."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.report.compare import speedup_figure
from bench.report.figures import throughput_by_batch_size
from bench.report.load import load_results
from report_fixtures import save, synthetic_results


def labelled_ticks(fig: Figure, which: str = "y") -> list[list]:
    """Per axes with a log `which` axis: the tick labels drawn inside the view."""
    FigureCanvasAgg(fig).draw()
    out = []
    for ax in fig.axes:
        axis = ax.yaxis if which == "y" else ax.xaxis
        if axis.get_scale() != "log":
            continue
        lo, hi = sorted(ax.get_ylim() if which == "y" else ax.get_xlim())
        ticks = [t for t in axis.get_majorticklabels() + axis.get_minorticklabels() if t.get_text()]
        out.append([t for t in ticks if lo <= (t.get_position()[1] if which == "y" else t.get_position()[0]) <= hi])
    return out


def assert_readable(fig: Figure) -> None:
    panels = labelled_ticks(fig)
    assert panels, "no log axis drawn"
    renderer = fig.canvas.get_renderer()  # the Agg canvas `labelled_ticks` drew on
    for labels in panels:
        assert len(labels) >= 3, [t.get_text() for t in labels]
        boxes = [t.get_window_extent(renderer) for t in labels]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), [t.get_text() for t in labels]


@pytest.mark.parametrize("spread", [1.45, 3.0, 1000.0])
def test_the_throughput_axis_has_three_readable_labels_however_narrow_the_data(tmp_path: Path, spread: float):
    """90k to 130k samples/s (the issue's two labels for such a range), a factor of 3, and three decades."""
    results = synthetic_results(batch_sizes=(1, 4, 16), failed=False, diverged=False,
                                speed=lambda bs: 90.0 * spread ** ((bs.bit_length() - 1) / 4) / bs)  # fmt: skip
    fig = throughput_by_batch_size(load_results(save(tmp_path / "r", results)))
    assert_readable(fig)


@pytest.mark.parametrize("speedups", [[0.08, 0.1, 0.2, 0.3], [3.0, 12.0, 40.0, 95.0]])
def test_the_speedup_axis_labels_do_not_pile_up(speedups: list[float]):
    """A narrow band below parity, and the 3x-95x of a GPU (90x, 80x, 70x ... were drawn on top of each other)."""
    table = pd.DataFrame(
        {
            "series": "stateless",
            "batch_size": [1, 2, 4, 8],
            "speedup": speedups,
            "speedup_low": [0.9 * v for v in speedups],
            "speedup_high": [1.1 * v for v in speedups],
        }  # fmt: skip
    )
    fig = speedup_figure(table, (), "A", "B")
    assert_readable(fig)
    assert all(t.get_text().endswith("x") for t in labelled_ticks(fig)[0])
