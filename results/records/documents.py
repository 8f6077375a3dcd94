"""Reading the files a user hands in (suite TOML, pytest-benchmark JSON) with one-line errors.

A missing file, a directory, bad encoding or bad syntax all end in the same kind of
message: the path, what is wrong, and the error class the caller's layer raises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["read_document"]


def read_document(path: Path, loads: Callable[[str], Any], kind: str, what: str,
                  error: Callable[[str], Exception]) -> Any:
    """``loads`` of the file's UTF-8 text; any failure raises ``error`` naming the path.

    ``kind`` names the syntax (TOML, JSON) and ``what`` the file (suite file, file).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError both are
        raise error(f"{path}: not valid {kind} ({exc})") from None
