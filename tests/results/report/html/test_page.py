"""The HTML report, parsed as a browser would: every plot embedded, every case there, nothing external."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from loadbench.results import build_report, load
from loadbench.results.report.html.page import render_html

PNG = b"\x89PNG\r\n\x1a\n"
CASE_ATTRS = ("run", "checkpoint", "task", "path", "dtype", "device", "cache")


class Page(HTMLParser):
    """Collects what the tests look at: images, figures, cases, cells, external references, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.figures: list[dict[str, str]] = []
        self.cases: list[dict[str, str]] = []
        self.cells: list[dict[str, str]] = []
        self.external: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self._cell: dict[str, str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        for key in ("src", "href"):
            if key in a and not a[key].startswith(("data:", "#")):
                self.external.append(f"{tag} {key}={a[key]}")
        if tag == "img":
            self.images.append(a)
        elif tag == "figure":
            self.figures.append(a)
        elif tag == "tr" and "case" in a.get("class", "").split():
            self.cases.append(a)
        elif tag == "td" and "data-metric" in a:
            self._cell = dict(a, text="")
            self.cells.append(self._cell)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell["text"] += data


def _png(src: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    data = base64.b64decode(src[len(prefix):], validate=True)
    assert data.startswith(PNG)
    return Image.open(io.BytesIO(data))


def _expected_cases(run_dirs: list[Path]) -> set[tuple[str, ...]]:
    df = load(run_dirs)
    keys = df[["run_id", "checkpoint", "task", "path", "dtype", "device", "cache"]].drop_duplicates()
    return {tuple(row) for row in keys.itertuples(index=False)}


def _render(run_dirs: list[Path]) -> Page:
    return Page(render_html(build_report(run_dirs)))


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, synthetic) -> tuple[Page, list[Path]]:
    """The report of one synthetic run, rendered once for the module (plots take seconds)."""
    run = synthetic.write_run(tmp_path_factory.mktemp("html") / "a", "20260101T000000Z-aaaa")
    return _render([run]), [run]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, synthetic) -> tuple[Page, list[Path]]:
    """Two synthetic runs side by side; B has another torch and a slower task path."""
    root = tmp_path_factory.mktemp("html")
    runs = [synthetic.write_run(root / "a", "20260101T000000Z-aaaa"),
            synthetic.write_run(root / "b", "20260102T000000Z-bbbb", slowdown=1.3, torch="2.14.0+cpu")]
    return _render(runs), runs


def test_every_plot_is_embedded_png(pair: tuple[Page, list[Path]]) -> None:
    page, _ = pair
    kinds = [(f["data-plot"], f["data-run"]) for f in page.figures]
    a, b = "20260101T000000Z-aaaa", "20260102T000000Z-bbbb"
    assert kinds == [("trend", "all"), *[(k, r) for r in (a, b) for k in ("load_time", "memory", "throughput")]]
    assert len(page.images) == len(page.figures) == 7
    for image in page.images:
        picture = _png(image["src"])
        assert picture.size[0] >= 800 and picture.size[1] >= 250
        assert image["alt"]
    assert page.external == []
    assert not {"script", "link", "iframe", "object", "embed"} & page.tags


def test_every_case_is_there_with_its_status(single: tuple[Page, list[Path]], synthetic) -> None:
    page, runs = single
    found = {tuple(c[f"data-{k}"] for k in CASE_ATTRS) for c in page.cases}
    assert found == _expected_cases(runs)
    status = {(c["data-checkpoint"], c["data-path"], c["data-cache"]): c["data-status"] for c in page.cases}
    assert status[synthetic.FAILED] == "failed"
    assert status[("tiny-t5", "pipeline", "warm")] == "not_applicable"
    assert status[("tiny-llama", "base", "warm")] == "ok"
    # Reasons are on the page, not only in a tooltip.
    text = "".join(page.text)
    assert "RuntimeError: worker crashed: out of memory" in text and synthetic.NA_REASON in text


def test_every_case_of_two_runs(pair: tuple[Page, list[Path]]) -> None:
    page, runs = pair
    found = {tuple(c[f"data-{k}"] for k in CASE_ATTRS) for c in page.cases}
    assert found == _expected_cases(runs) and len(found) == 48
    assert "These runs were measured in different environments" in "".join(page.text)


def test_cells_mark_best_unstable_failed_and_na(single: tuple[Page, list[Path]], synthetic) -> None:
    page, _ = single
    load_cells = {(c["data-checkpoint"], c["data-path"], c["data-cache"]): c for c in page.cells
                  if c["data-metric"] == "load_s"}
    best = load_cells[("tiny-llama", "base", "warm")]
    assert "best" in best["class"].split() and best["text"] == "200 ms ±1%"
    assert "n=3" in best["title"] and "IQR 199 ms–201 ms" in best["title"]
    unstable = load_cells[synthetic.UNSTABLE]
    assert "unstable" in unstable["class"].split() and unstable["text"].endswith(" !")
    failed = load_cells[synthetic.FAILED]
    assert failed["data-status"] == "failed" and failed["text"].startswith("FAILED [")
    na = load_cells[("tiny-t5", "pipeline", "cold")]
    assert na["data-status"] == "not_applicable" and na["text"].startswith("n/a [")
    rss = next(c for c in page.cells if c["data-metric"] == "peak_rss_bytes" and c["data-path"] == "pipeline")
    assert rss["text"].startswith("330 MiB")
    tps = next(c for c in page.cells if c["data-metric"] == "forward_tokens_per_s" and c["data-path"] == "base")
    assert tps["text"].startswith("6.00k tok/s")


def test_environment_heads_the_report(single: tuple[Page, list[Path]]) -> None:
    text = "".join(single[0].text)
    assert text.index("Environment") < text.index("At a glance") < text.index("Paths side by side")
    assert "AMD EPYC 7763" in text and "2.13.0+cpu" in text and "16.0 GiB" in text


def test_a_run_without_results_still_renders(make_run) -> None:
    page = _render([make_run([])])
    assert page.figures == [] and page.cases == [] and page.external == []
    assert "No results." in "".join(page.text)


def test_a_spread_runs_nodes_and_machines(tmp_path: Path, synthetic) -> None:
    from loadbench.results.records.runinfo import machine_key

    run = synthetic.write_spread_run(tmp_path / "spread")
    html = render_html(build_report(run))
    page = Page(html)
    amd, intel = (machine_key(fp) for fp in synthetic.NODES.values())
    assert html.index('id="environment"') < html.index('<table class="nodes">') < html.index('id="glance"')
    assert '<tr data-run="20260103T000000Z-cccc" data-node="bench-02-5e6f7a8b"><td>bench-02-5e6f7a8b</td>' in html
    text = "".join(page.text)
    assert "This run was measured on 2 nodes:" in text and "Intel Xeon Gold 6338" in text
    # Cases and cells carry their machine, so both machines' numbers are there, apart.
    assert {c["data-machine"] for c in page.cases} == {amd, intel} and len(page.cases) == 46
    load = {c["data-machine"]: c["text"] for c in page.cells
            if (c["data-checkpoint"], c["data-path"], c["data-cache"], c["data-metric"])
            == ("tiny-llama", "custom", "warm", "load_s")}
    assert load == {amd: "240 ms", intel: "264 ms ±64% !"}
    assert "<th>machine</th><th>metric</th><th>n</th>" in html  # the all-metrics table names the machine


def test_no_nodes_table_for_one_machine(single: tuple[Page, list[Path]]) -> None:
    page, _ = single
    assert "measured on" not in "".join(page.text)
    assert all("data-machine" not in c for c in page.cases)
