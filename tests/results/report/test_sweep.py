"""A run over several environments read as a sweep: order, versions, ratios, the HTML table and plot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from loadbench.results import RunWriter, Sample, build_report, load
from loadbench.results.report.html.page import render_html
from loadbench.results.report.sweep import environment_order, sweep

CASE = {"checkpoint": "tiny-llama", "task": "text-generation", "dtype": "auto", "device": "cpu", "cache": "warm"}
# Named in this order on purpose: not alphabetical, not the order samples were taken.
ENVS = {"v4.57": ("4.57.6", 0.016), "v5.0": ("5.0.0", 0.060), "v4.46": ("4.46.3", 0.020)}


def _fingerprint() -> dict[str, Any]:
    return {"hostname": "bench-01", "cpu_model": "AMD EPYC 7763", "cpu_count": 2, "python": "3.11.7",
            "packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0", "tokenizers": "0.23.3"}}


def _sweep_run(tmp_path: Path, envs: dict[str, tuple[str, float]] = ENVS) -> Path:
    nodes = {}
    for env, (version, _) in envs.items():
        machine = _fingerprint()
        machine["packages"]["transformers"] = version
        nodes[f"node-{env}"] = {**machine, "environment": env}
    suite = {"name": "sweep", "environments": [{"name": env, "requirements": [f"transformers=={v}"]}
                                              for env, (v, _) in envs.items()]}
    run_dir = tmp_path / "run"
    writer = RunWriter.create(run_dir, {"run_id": "r1", "suite": suite, "fingerprint": _fingerprint(), "nodes": nodes})
    for i in range(4):
        for env in reversed(envs):  # sampled in another order than named
            version, load_s = envs[env]
            for path in ("base", "pipeline"):
                case = {**CASE, "path": path, "env": env}
                node = f"node-{env}"
                writer.append_sample([
                    Sample.ok(case, "r1", i, "load_s", load_s * (1.5 if path == "pipeline" else 1.0) * (1 + i / 100),
                              node=node, block=i),
                    Sample.ok(case, "r1", i, "load_peak_rss_bytes", 300e6 if version < "5" else 600e6, node=node,
                              block=i),
                ])
    writer.close("complete")
    return run_dir


def test_environments_read_in_the_order_the_run_named_them(tmp_path: Path) -> None:
    report = build_report(_sweep_run(tmp_path))
    found = sweep(report, report.runs[0])
    assert found is not None
    assert found.envs == list(ENVS)
    assert found.versions["v4.46"].startswith("transformers 4.46.3 · torch 2.13.0+cpu")
    row = next(r for r in found.rows if r["metric"] == "load_s" and r["path"] == "base")
    medians = [cell.median for cell in row["cells"]]
    assert medians == pytest.approx([ENVS[e][1] * 1.015 for e in ENVS])
    assert environment_order({"suite": {"environments": [{"name": "b"}]}}, ["a", "b"]) == ["b", "a"]


def test_a_run_with_one_environment_is_no_sweep(tmp_path: Path) -> None:
    run_dir = tmp_path / "one"
    writer = RunWriter.create(run_dir, {"run_id": "r1", "suite": {"name": "t"}})
    writer.append(Sample.ok({**CASE, "path": "base"}, "r1", 0, "load_s", 0.1))
    writer.close("complete")
    report = build_report(run_dir)
    assert sweep(report, report.runs[0]) is None
    assert 'id="sweep"' not in render_html(report)


def test_html_shows_the_sweep_table_with_versions_ratios_and_a_plot(tmp_path: Path) -> None:
    page = render_html(build_report(_sweep_run(tmp_path)))
    section = page[page.index('<h2 id="sweep">'):page.index('<h2 id="paths">')]
    header = re.findall(r"<th>(.*?)</th>", section, re.DOTALL)
    assert header[-3:] == ["v4.57\ntransformers 4.57.6 · torch 2.13.0+cpu · tokenizers 0.23.3",
                           "v5.0\ntransformers 5.0.0 · torch 2.13.0+cpu · tokenizers 0.23.3",
                           "v4.46\ntransformers 4.46.3 · torch 2.13.0+cpu · tokenizers 0.23.3"]
    # v5.0's base load against v4.57's: 0.060 / 0.016 = 3.75.
    assert re.search(r'data-env="v5.0" data-path="base" data-metric="load_s"[^>]*>[^<]*<span class="note">×3.75',
                     section)
    assert 'data-metric="load_peak_rss_bytes"' in section
    assert 'data-plot="sweep"' in section and "data:image/png;base64," in section


def test_the_frame_carries_each_environments_versions(tmp_path: Path) -> None:
    frame = load(_sweep_run(tmp_path))
    versions = frame.groupby("env")["transformers_version"].unique().to_dict()
    assert {env: list(v) for env, v in versions.items()} == {env: [ENVS[env][0]] for env in ENVS}
    assert set(frame.groupby(["transformers_version", "path"]).size().index) == {
        (v, p) for v, _ in ENVS.values() for p in ("base", "pipeline")}


def test_an_environment_outside_the_supported_range_is_warned_about(tmp_path: Path) -> None:
    import tomllib

    from loadbench.vocabulary import SUPPORTED_TRANSFORMERS, supported_transformers

    pinned = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]["dependencies"]
    (low, high) = (".".join(map(str, v)) for v in SUPPORTED_TRANSFORMERS)
    assert f"transformers>={low},<{high.split('.')[0]}" in pinned  # the code and pyproject state one range
    assert [supported_transformers(v) for v in ("4.45.2", "4.46.0", "5.24.0", "5.0.0rc1", "6.0.0", "x")] == [
        False, True, True, True, False, False]
    report = build_report(_sweep_run(tmp_path, {**ENVS, "v4.40": ("4.40.2", 0.02)}))
    assert [w for w in report.warnings if "supported" in w] == [
        "run A: r1, environment v4.40: transformers 4.40.2 is outside the supported range (4.46 up to 6.0); a "
        "failure there may be loadbench's, not that release's"]
    assert "outside the supported range" in render_html(report)


def test_markdown_has_the_sweep_table_too(tmp_path: Path) -> None:
    from loadbench.results.report.markdown import render_markdown

    text = render_markdown(build_report(_sweep_run(tmp_path)))
    section = text[text.index("## Across environments"):text.index("## Paths side by side")]
    assert "**v4.46**: transformers 4.46.3 · torch 2.13.0+cpu" in section
    assert "| checkpoint | metric | path | v4.57 | v5.0 | v4.46 |" in section
    row = next(line for line in section.splitlines() if line.startswith("| tiny-llama | load_s | base |"))
    assert "×3.75" in row and "×1.25" in row
