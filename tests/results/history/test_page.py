"""The history page: one self-contained file, a figure per series with its change points, links to each run's report."""

from __future__ import annotations

import re

from loadbench.results.history.page import write_page
from loadbench.results.history.show import analyze
from loadbench.results.history.store import add


def test_the_page_marks_the_step_and_links_each_run(tmp_path, history_run) -> None:
    root = tmp_path / "history"
    runs = [history_run(n, 1.0 if n <= 6 else 1.12) for n in range(1, 13)]
    (runs[0] / "report.html").write_text("<html></html>")
    add(runs, root)
    page = write_page(analyze(root), tmp_path / "site").read_text()
    figures = re.findall(r'<figure class="plot" data-checkpoint="tiny-llama" data-path="task" '
                         r'data-metric="(\w+)" data-changes="(\d+)">', page)
    assert dict(figures) == {"load_s": "1", "peak_rss_bytes": "0"}
    assert "at c07" in page and "<script" not in page
    assert page.count('<tr data-label="c') == 12
    assert '<a href="../runs/run01/report.html">report</a>' in page  # relative to the page: the site moves whole
    assert page.count("data:image/png;base64,") == 2
