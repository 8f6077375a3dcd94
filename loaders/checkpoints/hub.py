"""Checkpoints named by Hugging Face hub id, ``org/name[@revision]``, resolved to a local snapshot.

Resolution happens once, when a run is planned, never inside a sample: from the local
Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub, read when called), and from
the network only when the user allows a download. What a load then reads is the snapshot
directory, whose name is the commit: the run records it, so a result says exactly which
weights it measured.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from loadbench.errors import UserError

__all__ = ["HubCheckpoint", "HubError", "download_patterns", "hub_cache_dir", "hub_label", "is_hub_id",
           "parse_hub_id", "resolve_hub"]

# What a load needs, and nothing else a repository may hold (other frameworks' weights, ONNX, images).
# The checkpoint's own code only when it may run (download_patterns).
_LOADING_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.tiktoken"]
_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95})(@(?P<revision>[\w./-]{1,200}))?$")


class HubError(UserError):
    """A hub id that cannot be resolved: not cached, offline, unknown, gated or malformed."""


@dataclass(frozen=True)
class HubCheckpoint:
    """A resolved hub id: where its snapshot is, and the commit it holds."""

    repo: str
    revision: str | None  # as asked: a branch, tag or commit; None for the default branch
    commit: str
    directory: Path

    @property
    def label(self) -> str:
        return hub_label(self.repo, self.revision)


def hub_label(repo: str, revision: str | None) -> str:
    """How tables and records name a hub checkpoint: the id as the user wrote it."""
    return f"{repo}@{revision}" if revision else repo


def is_hub_id(text: str) -> bool:
    """Whether ``text`` reads as ``org/name[@revision]`` (a directory of that name wins: ask first)."""
    return bool(_ID.match(text)) and ".." not in text


def parse_hub_id(text: str) -> tuple[str, str | None]:
    match = _ID.match(text)
    if match is None or ".." in text:
        raise HubError(f"checkpoint {text!r}: not a hub id; write it as org/name or org/name@revision")
    return match["repo"], match["revision"]


def hub_cache_dir() -> Path:
    """The cache huggingface_hub uses, read from the environment now (its constants are read at import)."""
    if explicit := os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def download_patterns(trust_remote_code: bool = False) -> list[str]:
    """The files a download fetches: what a load reads, and the checkpoint's Python code only if it may run."""
    return [*_LOADING_FILES, *(["*.py"] if trust_remote_code else [])]


def _no_directory(repo: str) -> str:
    """``org/name`` reads as a hub id and as a relative path alike: say it is not a directory here either."""
    return "" if Path(repo).expanduser().exists() else "no such directory here (check the path, if it is one), and "


def resolve_hub(repo: str, revision: str | None = None, *, download: bool = False,
                trust_remote_code: bool = False) -> HubCheckpoint:
    """The local snapshot of ``repo`` at ``revision``; downloaded first only if ``download``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    label = f"{repo}@{revision}" if revision else repo
    cache = hub_cache_dir()
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    fetch = f"fetch it first with `hf download {repo}{f' --revision {revision}' if revision else ''}`"
    try:
        directory = snapshot_download(repo, revision=revision, cache_dir=cache,
                                      allow_patterns=download_patterns(trust_remote_code),
                                      local_files_only=not download or offline)
    except LocalEntryNotFoundError as exc:
        if type(exc).__name__ == "IncompleteSnapshotError":  # huggingface_hub >= 1.x tells a partial snapshot
            raise HubError(f"checkpoint {label!r}: its snapshot in the Hugging Face cache ({cache}) lacks files "
                           f"an interrupted download left out; {fetch.replace('fetch it first', 'complete it')}, "
                           "or pass `download`") from None
        if download and not offline:  # a download was allowed and tried: the hub did not answer
            raise HubError(f"checkpoint {label!r}: not in the Hugging Face cache ({cache}), and the hub cannot "
                           f"be reached; check the network, or {fetch} where there is one") from None
        if download and offline:
            raise HubError(f"checkpoint {label!r}: not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE is set; "
                           f"unset it to download, or {fetch}") from None
        raise HubError(f"checkpoint {label!r}: {_no_directory(repo)}not in the Hugging Face cache ({cache}); "
                       f"{fetch}, or pass `download`") from None
    except GatedRepoError:
        raise HubError(f"checkpoint {label!r}: a gated repository; accept its terms on the hub and log in "
                       "(`hf auth login`), then try again") from None
    except RevisionNotFoundError:
        raise HubError(f"checkpoint {label!r}: the repository has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise HubError(f"checkpoint {label!r}: {_no_directory(repo)}no such repository on the hub (or it is "
                       "private: log in with `hf auth login`)") from None
    except (HfHubHTTPError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HubError(f"checkpoint {label!r}: could not download it ({first}); {fetch}") from None
    path = Path(directory)
    return HubCheckpoint(repo, revision, path.name, path)
