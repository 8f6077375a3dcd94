"""The markdown report: what a PR comment or CI job summary shows."""

from __future__ import annotations

import re
from pathlib import Path

from loadbench.results import build_report
from loadbench.results.report.markdown import render_markdown


def _section(text: str, heading: str) -> str:
    """The text under one "## heading", up to the next one."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _row(text: str, *start: str) -> list[str]:
    """The markdown table row whose first cells are ``start``, split into cells."""
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in text.splitlines()
            if line.startswith("| ")]
    matches = [r for r in rows if r[:len(start)] == list(start)]
    assert len(matches) == 1, (start, matches)
    return matches[0]


def test_one_run(synthetic_run: Path, synthetic) -> None:
    text = render_markdown(build_report(synthetic_run))
    headings = re.findall(r"^(#+ .*)$", text, flags=re.M)
    assert headings == ["# loadbench report: run 20260101T000000Z-aaaa", "## Environment", "## At a glance",
                        "## Paths side by side", "## Cases"]
    assert _row(text, "CPU") == ["CPU", "AMD EPYC 7763"] and _row(text, "RAM") == ["RAM", "16.0 GiB"]
    # Human units, best path in bold, spread after the median.
    # custom is the unstable case: 0.6x, x, 1.6x has mean 16x/15 and sample std ~0.503x, so CV 47%.
    assert _row(text, "tiny-llama", "text-generation", "warm", "load_s")[4:] == [
        "**200 ms ±1%**", "220 ms ±1%", "240 ms ±47% !", "300 ms ±1%"]
    assert _row(text, "tiny-llama", "text-generation", "warm", "peak_rss_bytes")[4] == "**300 MiB ±<1%**"
    assert _row(text, "tiny-llama", "text-generation", "warm", "decode_tokens_per_s")[4:] == [
        "—", "**400 tok/s ±1%**", "—", "380 tok/s ±1%"]
    assert _row(text, "tiny-bert", "text-classification", "warm", "forward_tokens_per_s")[4] == \
        "**6.00k tok/s ±1%**"
    assert "`!` **Unstable**: the samples' CV is above 10%" in text


def test_failed_and_na_rows_say_why(synthetic_run: Path, synthetic) -> None:
    text = render_markdown(build_report(synthetic_run))
    failed = _row(text, "tiny-bert", "text-classification", "cold", "load_s")[-1]
    na = _row(text, "tiny-t5", "text2text-generation", "warm", "load_s")[-1]
    notes = dict(re.findall(r"^(\[\d+\]) (.*?)  $", text, flags=re.M))
    assert failed.startswith("FAILED [") and notes[failed.split()[1]] == "RuntimeError: worker crashed: out of memory"
    assert na.startswith("n/a [") and notes[na.split()[1]] == synthetic.NA_REASON
    # The cases section lists exactly the cases that need attention, with their reasons.
    assert "24 cases: 21 ok, 1 FAILED, 2 n/a. The others:" in text
    assert _row(text, "tiny-bert", "text-classification", "pipeline", "cold") == [
        "tiny-bert", "text-classification", "pipeline", "cold", "**FAILED**", "0",
        "RuntimeError: worker crashed: out of memory"]
    assert "Not measured in any case: gpu_peak_used_bytes: " + synthetic.GPU_REASON in text


def test_glance_row(synthetic_run: Path) -> None:
    text = _section(render_markdown(build_report(synthetic_run)), "At a glance")
    assert _row(text, "tiny-llama", "text-generation", "warm")[3:6] == [
        "**base 200 ms** <sub>≈ custom</sub>", "no clear winner <sub>4 paths tie</sub>", "**base 300 MiB**"]


def test_two_runs(synthetic_pair: tuple[Path, Path]) -> None:
    text = render_markdown(build_report(list(synthetic_pair)))
    assert text.startswith("# loadbench report: 2 runs\n\n> [!WARNING]\n> **These runs were measured in different")
    assert "> - torch_version: 2.13.0+cpu (A), 2.14.0+cpu (B)" in text
    assert _row(text, "**torch** ≠") == ["**torch** ≠", "2.13.0+cpu", "2.14.0+cpu"]
    # Three repeats per side cannot reach significance: no verdicts, and the report says why.
    assert _row(text, "tiny-llama", "task", "warm", "load_s")[4:] == ["220 ms ±1%", "286 ms ±1%", "—"]
    assert ("> Run B: 20260102T000000Z-bbbb has no verdicts: too few samples to bound any change at alpha 0.01: "
            "3 per side") in text
    assert text.count("<summary>Run ") == 2  # per-run path tables folded under the comparison


def test_two_runs_carry_compares_verdicts(synthetic_pair_10: tuple[Path, Path]) -> None:
    text = _section(render_markdown(build_report(list(synthetic_pair_10))), "Runs side by side")
    assert "as loadbench compare judges" in text and "has no verdicts" not in text
    assert _row(text, "tiny-llama", "task", "warm", "load_s")[4:] == [
        "220 ms ±1%", "286 ms ±1%", "1.30× **regressed**"]
    assert _row(text, "tiny-llama", "base", "warm", "load_s")[4:] == ["200 ms ±1%", "200 ms ±1%", "1.00× unchanged"]
    assert _row(text, "tiny-t5", "pipeline", "warm", "load_s")[4:] == ["n/a", "n/a", "—"]
    assert _row(text, "tiny-bert", "pipeline", "cold", "load_s")[4:] == ["FAILED", "FAILED", "—"]


def test_pipes_in_messages_do_not_break_tables(make_run, case: dict[str, str]) -> None:
    from loadbench.results import Sample

    run = make_run([Sample.ok(case, "r", 0, "load_s", 1.0),
                    Sample.failed({**case, "path": "task"}, "r", 0, "load_s", "ValueError", "a | b\nsecond line")])
    text = render_markdown(build_report(run))
    assert "ValueError: a \\| b second line" in text


def test_a_spread_runs_nodes_are_listed_under_the_environment(tmp_path: Path, synthetic) -> None:
    from loadbench.results.records.runinfo import machine_key

    text = render_markdown(build_report(synthetic.write_spread_run(tmp_path / "spread")))
    amd, intel = (machine_key(fp) for fp in synthetic.NODES.values())
    environment = _section(text, "Environment")
    assert "This run was measured on 2 nodes:" in environment
    assert _row(environment, "node") == ["node", "host", "CPU", "GPUs", "torch threads", "machine"]
    assert _row(environment, "bench-02-5e6f7a8b") == [
        "bench-02-5e6f7a8b", "bench-02", "Intel Xeon Gold 6338",
        "none (NVML unavailable: NVML Shared Library Not Found)", "unknown", intel]
    assert "> run A: 20260103T000000Z-cccc was measured on 2 different machines" in text
    # Each machine's numbers in a row of their own; the title keeps the case settings only.
    paths = _section(text, "Paths side by side")
    assert paths.startswith("\n*dtype auto · device cpu*\n")
    assert _row(paths, "checkpoint") == ["checkpoint", "task", "cache", "machine", "metric", "base", "task", "custom",
                                         "pipeline"]
    assert _row(paths, "tiny-llama", "text-generation", "warm", amd, "load_s")[7] == "240 ms"
    assert _row(paths, "tiny-llama", "text-generation", "warm", intel, "load_s")[7] == "264 ms ±64% !"
    cases = _section(text, "Cases")
    assert _row(cases, "tiny-bert", "text-classification", "pipeline", "cold", intel)[5] == "**FAILED**"


def test_one_node_changes_nothing(tmp_path: Path, synthetic) -> None:
    import json

    run = synthetic.write_run(tmp_path / "run")
    before = render_markdown(build_report(run))
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "nodes": {"bench-01-1a2b3c4d": synthetic.FINGERPRINT}}))
    assert render_markdown(build_report(run)) == before
    assert "nodes:" not in before
