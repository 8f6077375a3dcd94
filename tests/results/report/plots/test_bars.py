"""Figures: what is drawn is the summary's medians and IQRs, and missing bars say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadbench.results import build_report
from loadbench.results.report.plots.bars import load_time_figure, memory_figure, throughput_figure
from loadbench.results.report.plots.panels import png_bytes
from loadbench.results.report.plots.trends import trend_figure


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory, synthetic):
    return build_report(synthetic.write_run(tmp_path_factory.mktemp("plots") / "a", "run-a")).summary


def _axis(fig, title: str):
    return next(ax for ax in fig.axes if ax.get_title().startswith(title))


def _whiskers(ax) -> list[tuple[float, float]]:
    """(low, high) of every error bar drawn on the axis."""
    out = []
    for container in ax.containers:
        for collection in getattr(container, "lines", ((), (), ()))[2]:
            out += [(float(seg[0][1]), float(seg[1][1])) for seg in collection.get_segments()]
    return out


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_load_time_is_stacked_by_phase_with_iqr_whiskers(summary, synthetic) -> None:
    fig = load_time_figure(summary)
    ax = _axis(fig, "tiny-llama")
    assert ax.get_ylabel() == "load time (ms)"
    loads = sorted(synthetic.load_seconds("tiny-llama", "custom", "warm"))
    # Linear quartiles of three sorted samples sit halfway between neighbours.
    q1, q3 = (loads[0] + loads[1]) / 2 * 1e3, (loads[1] + loads[2]) / 2 * 1e3
    assert any(low == pytest.approx(q1) and high == pytest.approx(q3) for low, high in _whiskers(ax))
    # The five phase segments of one bar add up to the phases' medians (here: the whole load).
    x_heights: dict[float, float] = {}
    for patch in ax.patches:
        x_heights[round(patch.get_x(), 6)] = x_heights.get(round(patch.get_x(), 6), 0.0) + patch.get_height()
    assert pytest.approx(200.0) in x_heights.values()  # base, warm: 200 ms
    assert len(ax.patches) == 5 * 8  # five phases × four paths × warm and cold


def test_missing_bars_say_failed_or_na(summary) -> None:
    fig = load_time_figure(summary)
    assert _texts(_axis(fig, "tiny-bert")) == ["FAILED"]  # pipeline, cold
    assert _texts(_axis(fig, "tiny-t5")) == ["n/a", "n/a"]  # pipeline, warm and cold
    tps = throughput_figure(summary)
    decode_bert = [ax for ax in tps.axes if ax.get_title().startswith("tiny-bert")][0]
    assert "no path measured" in _texts(decode_bert)[0]


def test_memory_and_throughput_axes_use_human_units(summary) -> None:
    memory = memory_figure(summary)
    assert {ax.get_ylabel() for ax in memory.axes if ax.get_visible()} == {"peak RSS (MiB)"}  # GPU: measured nowhere
    labels = {ax.get_ylabel() for ax in throughput_figure(summary).axes}
    assert {"decode (tok/s)", "forward (k tok/s)"} <= labels


def test_trend_only_with_several_runs(tmp_path: Path, synthetic, summary) -> None:
    assert trend_figure(summary) is None
    a = synthetic.write_run(tmp_path / "a", "run-a")
    b = synthetic.write_run(tmp_path / "b", "run-b", slowdown=1.3)
    fig = trend_figure(build_report([a, b]).summary, {"run-a": "A", "run-b": "B"})
    ax = _axis(fig, "tiny-llama")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B"]
    assert ax.get_ylim()[0] == 0


def test_no_figure_without_numbers(make_run) -> None:
    empty = build_report(make_run([])).summary
    assert load_time_figure(empty) is None and memory_figure(empty) is None
    assert throughput_figure(empty) is None and trend_figure(empty) is None


def test_png_bytes(summary) -> None:
    assert png_bytes(memory_figure(summary)).startswith(b"\x89PNG\r\n\x1a\n")


def test_a_spread_run_draws_each_machine_in_its_own_panel(tmp_path: Path, synthetic) -> None:
    from loadbench.results.records.runinfo import machine_key

    summary = build_report(synthetic.write_spread_run(tmp_path / "spread")).summary
    fig = load_time_figure(summary)
    intel = machine_key(synthetic.OTHER_NODE)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(titles) == 2 * len(synthetic.CHECKPOINTS)
    assert sum(intel in t for t in titles) == len(synthetic.CHECKPOINTS)
