"""The fingerprint names what decides the numbers, without secrets."""

from __future__ import annotations

from importlib.metadata import version

from loadbench.bench.fingerprint import fingerprint


def test_fingerprint_fields(monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "secret")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    fp = fingerprint()
    assert fp["packages"]["torch"] == version("torch")
    assert fp["packages"]["transformers"] == version("transformers")
    assert fp["cpu_count"] >= 1 and fp["ram_bytes"] > 2**30
    assert fp["env"]["OMP_NUM_THREADS"] == "2"
    assert "HF_TOKEN" not in fp["env"]
    # No GPU on this machine or CI: the fingerprint says why instead of listing nothing.
    assert isinstance(fp["gpus"], list) or fp["gpus"].startswith("NVML unavailable")
