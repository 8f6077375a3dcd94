"""The host's speed over a run: the fixed-loop probe each sample takes just before its load.

A comparison can only be as steady as the machine it runs on. Plotted in the order the
samples were measured, the probe shows when the host itself got slower or faster (a
neighbour's job, a throttled core), which no statistic on the load times alone can tell
apart from a change in the loading code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["host_drift_figure"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_WINDOW = 25  # samples in the rolling median that traces the drift


def host_drift_figure(records: pd.DataFrame) -> Figure | None:
    """One run's probe values (ms) against the sample's position in the run, a colour per environment.

    ``records`` are one run's ``load()`` rows in file order (the order measured). None
    when the run has fewer than two probes (runs from before the probe have none).
    """
    import numpy as np
    from matplotlib.figure import Figure

    probes = records[(records["metric"] == "host_probe_s") & (records["status"] == "ok")]
    if len(probes) < 2:
        return None
    position = np.arange(len(probes))
    values = probes["value"].to_numpy(dtype=float) * 1000
    fig = Figure(figsize=(9.0, 2.8), dpi=100, layout="constrained")
    ax = fig.subplots()
    envs = list(dict.fromkeys(probes["env"]))
    for i, env in enumerate(envs):
        mine = (probes["env"] == env).to_numpy()
        ax.plot(position[mine], values[mine], linestyle="none", marker=".", markersize=3, alpha=0.6,
                color=_COLORS[i % len(_COLORS)], label=env if len(envs) > 1 else "probe")
    trend = probes["value"].rolling(_WINDOW, center=True, min_periods=1).median().to_numpy() * 1000
    ax.plot(position, trend, color="#222222", linewidth=1.2, label=f"rolling median of {_WINDOW}")
    ax.set_ylim(0, float(np.percentile(values, 99)) * 1.15)
    ax.set_xlabel("sample, in the order measured", fontsize=9)
    ax.set_ylabel("fixed loop (ms)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(color="#e8e8e8", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False, ncols=len(envs) + 1, loc="lower right")
    return fig
