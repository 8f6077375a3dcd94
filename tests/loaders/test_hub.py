"""Hub ids resolved through huggingface_hub itself, from a cache laid out as it lays one out; no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadbench.loaders.hub import HubError, hub_cache_dir, is_hub_id, parse_hub_id, resolve_hub

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # the commits of conftest's hub_cache
OLDER = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.mark.parametrize(("text", "expected"), [
    ("acme/tiny-llama", ("acme/tiny-llama", None)), ("acme/tiny-llama@v1", ("acme/tiny-llama", "v1")),
    (f"acme/m.1_x@{COMMIT}", ("acme/m.1_x", COMMIT)), ("acme/m@refs/pr/3", ("acme/m", "refs/pr/3"))])
def test_hub_ids_parse(text: str, expected: tuple[str, str | None]) -> None:
    assert is_hub_id(text)
    assert parse_hub_id(text) == expected


@pytest.mark.parametrize("text", ["tiny-llama", "a/b/c", "/abs/path", "./models/x", "acme/../x", "acme/x@", "a b/c"])
def test_what_is_not_a_hub_id(text: str) -> None:
    assert not is_hub_id(text)
    with pytest.raises(HubError, match="not a hub id; write it as org/name"):
        parse_hub_id(text)


def test_resolves_offline_from_the_cache_and_names_the_commit(hub_cache: Path) -> None:
    hub = resolve_hub("acme/tiny-llama")
    assert (hub.commit, hub.label) == (COMMIT, "acme/tiny-llama")
    assert hub.directory == hub_cache / "models--acme--tiny-llama" / "snapshots" / COMMIT
    assert (hub.directory / "model.safetensors").is_file()


@pytest.mark.parametrize("revision", ["v1", OLDER])
def test_a_revision_by_ref_or_by_commit(hub_cache: Path, revision: str) -> None:
    hub = resolve_hub("acme/tiny-llama", revision)
    assert hub.commit == OLDER and hub.label == f"acme/tiny-llama@{revision}"


def test_a_missing_repo_says_how_to_fetch_it(hub_cache: Path) -> None:
    with pytest.raises(HubError) as caught:
        resolve_hub("acme/absent")
    message = str(caught.value)
    assert message == (f"checkpoint 'acme/absent': not in the Hugging Face cache ({hub_cache}); fetch it first "
                       "with `hf download acme/absent`, or pass --download")


def test_download_while_offline_says_both_ways_out(hub_cache: Path) -> None:
    with pytest.raises(HubError, match=r"HF_HUB_OFFLINE is set; unset it to download, or fetch it first with "
                                       r"`hf download acme/absent --revision v2`"):
        resolve_hub("acme/absent", "v2", download=True)


def test_the_cache_is_read_from_the_environment_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hub_cache_dir() == tmp_path / "elsewhere"
