"""Hub ids resolved through huggingface_hub itself, from a cache laid out as it lays one out; no network."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadbench.loaders.checkpoints.hub import (
    HubError,
    download_patterns,
    hub_cache_dir,
    is_hub_id,
    parse_hub_id,
    resolve_hub,
)

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
    assert message == (f"checkpoint 'acme/absent': no such directory here (check the path, if it is one), and not in "
                       f"the Hugging Face cache ({hub_cache}); fetch it first with `hf download acme/absent`, or "
                       "pass `download`")


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


def test_a_partial_snapshot_says_to_complete_it(hub_cache: Path) -> None:
    tree_cache = pytest.importorskip("huggingface_hub._tree_cache")  # huggingface_hub >= 1.x checks completeness
    # The tree listing a download caches names a file the snapshot lacks: an interrupted download.
    entry = tree_cache.TreeCacheEntry(size=1, blob_id="0" * 40, lfs_sha256=None, lfs_size=None, xet_hash=None)
    tree_cache.write_tree_cache(str(hub_cache / "models--acme--tiny-llama"), COMMIT,
                                {"config.json": entry, "model-00002-of-00002.safetensors": entry})
    with pytest.raises(HubError) as caught:
        resolve_hub("acme/tiny-llama")
    assert str(caught.value) == (
        f"checkpoint 'acme/tiny-llama': its snapshot in the Hugging Face cache ({hub_cache}) lacks files an "
        "interrupted download left out; complete it with `hf download acme/tiny-llama`, or pass `download`")


def test_a_download_fetches_only_what_a_load_reads() -> None:
    assert {"*.json", "*.safetensors"} <= set(download_patterns())
    assert not any(p.endswith((".py", ".bin", ".h5", ".msgpack", ".onnx", ".pt")) for p in download_patterns())
    assert "*.py" in download_patterns(trust_remote_code=True)  # the code, only when it may run


class _FakeHub(BaseHTTPRequestHandler):
    """The hub's API for repos that cannot be fetched, answered as huggingface_hub reads it (X-Error-Code)."""

    ANSWERS = {"acme/gated": (401, "GatedRepo"), "acme/absent": (404, "RepoNotFound"),
               "acme/tiny-llama": (404, "RevisionNotFound"), "acme/down": (503, "")}

    def do_GET(self) -> None:
        repo = "/".join(self.path.split("?")[0].split("/")[3:5])  # /api/models/ORG/NAME/revision/REV
        status, code = self.ANSWERS.get(repo, (404, "RepoNotFound"))
        body = json.dumps({"error": code or "unavailable"}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A loopback stand-in for huggingface.co, an empty cache, and a machine that is not offline."""
    from huggingface_hub import constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read at its import, maybe under HF_HUB_OFFLINE=1
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_TOKEN", "hf_test")  # no token of this machine's is sent or needed
    yield tmp_path / "hub"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("repo", "revision", "expected"), [
    ("acme/gated", None, "checkpoint 'acme/gated': a gated repository; accept its terms on the hub and log in "
                         "(`hf auth login`), then try again"),
    ("acme/absent", None, "checkpoint 'acme/absent': no such directory here (check the path, if it is one), and no "
                          "such repository on the hub (or it is private: log in with `hf auth login`)"),
    ("acme/tiny-llama", "v9", "checkpoint 'acme/tiny-llama@v9': the repository has no revision 'v9'"),
    ("acme/down", None, "checkpoint 'acme/down': not in the Hugging Face cache ({cache}), and the hub cannot be "
                        "reached; check the network, or fetch it first with `hf download acme/down` where there "
                        "is one"),
])
def test_download_errors_are_one_line_each(fake_hub: Path, repo: str, revision: str | None, expected: str) -> None:
    with pytest.raises(HubError) as caught:
        resolve_hub(repo, revision, download=True)
    assert str(caught.value) == expected.format(cache=fake_hub)
