"""Suites: which checkpoints, paths, tasks and settings a run covers.

A suite is a TOML file validated by a pydantic model, so a typo in a key or a value of
the wrong type is an error that names the key, never a silently ignored setting.
"""

from __future__ import annotations

import errno
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loadbench.errors import UserError
from loadbench.results.comparison.comparability import CannotCompare
from loadbench.results.comparison.settings import compare_settings_from_table
from loadbench.results.records.documents import read_document
from loadbench.vocabulary import CACHE_STATES, DTYPES, PATH_NAMES, TASK_NAMES

__all__ = ["SuiteError", "CheckpointEntry", "EnvironmentEntry", "SettingEntry", "Suite", "load_suite", "default_suite",
           "unresolvable", "suite_for_dirs", "suite_from_dict"]

DEFAULT_PROMPT = "The river carried the old machine down to the sea, and"
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class SuiteError(UserError):
    """The suite file or options cannot be used; the message names the key."""


def unresolvable(path: str) -> str | None:
    """Why ``path`` cannot be followed to a place (a symlink loop, a name too long), or None."""
    try:
        Path(path).expanduser().resolve()
    except RuntimeError:  # Python 3.11 says a loop so; 3.13 raises OSError(ELOOP)
        return "a symbolic link that loops"
    except OSError as exc:
        return "a symbolic link that loops" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckpointEntry(_Strict):
    """One checkpoint: a local directory, a built-in one, or a Hugging Face hub id."""

    path: str | None = None
    builtin: str | None = None
    repo: str | None = Field(None, description="a hub id, org/name: resolved from the local Hugging Face cache "
                                               "(or downloaded first, with download = true)")
    revision: str | None = Field(None, min_length=1, description="with repo: a branch, tag or commit")
    tasks: Literal["primary", "all"] | list[Literal[TASK_NAMES]] = "primary"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _one_source(self) -> CheckpointEntry:
        if sum(source is not None for source in (self.path, self.builtin, self.repo)) != 1:
            raise ValueError("give exactly one of 'path', 'builtin' or 'repo'")
        if self.path is not None and (why := unresolvable(self.path)):
            raise ValueError(f"{self.path}: {why}; give the checkpoint's directory itself")
        if self.revision is not None and self.repo is None:
            raise ValueError("'revision' goes with 'repo'")
        if self.repo is not None:
            from loadbench.loaders.checkpoints.hub import HubError, parse_hub_id

            try:
                _, inline = parse_hub_id(self.repo)
            except HubError as exc:
                raise ValueError(str(exc)) from None
            if inline is not None:
                raise ValueError(f"repo {self.repo!r}: give the revision as revision = {inline!r}")
        return self


class EnvironmentEntry(_Strict):
    """A Python environment to measure every case in: a venv or interpreter, or requirements to build one from."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    python: str | None = Field(None, min_length=1,
                               description="a virtual environment's directory or a Python interpreter")
    requirements: list[str] | None = Field(
        None, min_length=1, max_length=256,
        description="pip requirements (e.g. transformers==4.57.6) to build an environment from, once, on top "
                    "of this one")

    @model_validator(mode="after")
    def _one_source(self) -> EnvironmentEntry:
        if (self.python is None) == (self.requirements is None):
            raise ValueError(f"environment {self.name!r}: give exactly one of 'python' or 'requirements'")
        if self.requirements is not None:
            from loadbench.bench.executors.env_build import BuildFailed, normalized_requirements

            try:
                normalized_requirements(self.requirements, f"environment {self.name!r}")
            except BuildFailed as exc:
                raise ValueError(str(exc)) from None
        return self


def _check_path(value: str) -> str:
    from loadbench.loaders.paths.user_path import SHIPPED, is_user_path

    if value not in PATH_NAMES and not is_user_path(value):
        raise ValueError(f"{value!r} is not a path: give one of {', '.join(PATH_NAMES + tuple(SHIPPED))}, "
                         "or your own loading function as module:function")
    return value


def _parsed_options(table: dict[str, Any]) -> dict[str, Any]:
    from loadbench.loaders.options import OptionError, parse_value

    try:
        return {name: parse_value(name, value) for name, value in table.items()}
    except OptionError as exc:
        raise ValueError(str(exc)) from None


class SettingEntry(_Strict):
    """One way of loading named whole, a path with the options it takes: ``[[settings]]``.

    Where ``paths`` x ``[options]`` would measure every combination, a list of settings
    measures just these (what ``loadbench tune`` writes: the default and its recommendation).
    """

    path: str = "task"
    options: dict[str, str | int | bool] = {}

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _check_path(value)

    @field_validator("options")
    @classmethod
    def _options(cls, table: dict[str, str | int | bool]) -> dict[str, str | int | bool]:
        _parsed_options(table)
        return table

    def load_options(self) -> Any:
        from loadbench.loaders.options import LoadOptions

        return LoadOptions(**_parsed_options(self.options))


class Suite(_Strict):
    """A run's plan. Defaults make the embedded default suite."""

    name: str = "default"
    checkpoints: list[CheckpointEntry] = Field(min_length=1)
    paths: list[str] = Field(list(PATH_NAMES), description="base, task, custom, pipeline, a shipped fast loader "
                                                           "(runai-streamer, fastsafetensors, tensorizer, "
                                                           "instanttensor) or module:function")
    # Upper bounds: a value past them is a typo, and one took 5 GB before it failed.
    repeats: int = Field(3, ge=1, le=100_000)
    warmups: int = Field(1, ge=0, le=10_000, description="samples per case taken first and discarded")
    new_tokens: int = Field(16, ge=2, le=100_000, description="fixed generation length")
    prompt: str = Field(DEFAULT_PROMPT, min_length=1, max_length=1_000_000)
    prompt_tokens: int | None = Field(None, ge=1, le=1_000_000,
                                      description="cut or repeat the prompt to this many tokens")
    batch_size: int = Field(1, ge=1, le=65_536)
    forward_iters: int = Field(10, ge=1, le=10**9)  # a count of calls, not of memory
    device: list[str] = ["auto"]
    dtype: list[Literal[DTYPES]] = ["auto"]  # type: ignore[valid-type]
    cache: list[Literal[CACHE_STATES]] = list(CACHE_STATES)  # type: ignore[valid-type]
    threads: int | None = Field(None, ge=1, le=4096,
                                description="torch threads per worker (default: usable cores - 1)")
    pin_cpus: bool = Field(True, description="pin each worker to as many CPUs as threads")
    seed: int | None = Field(None, ge=-(2**63), lt=2**63,
                             description="case order shuffle seed (default: drawn and recorded)")
    cv_threshold: float = Field(0.10, gt=0, le=100, allow_inf_nan=False,
                                description="a case whose CV exceeds this is flagged unstable")
    timeout_s: float = Field(600.0, gt=0, le=7 * 24 * 3600, allow_inf_nan=False)
    trust_remote_code: bool = False
    download: bool = Field(False, description="download hub checkpoints missing from the local cache, before "
                                              "anything is timed")
    allow_bin_weights: bool = Field(False, description="accept pickle .bin weights (loaded weights_only)")
    share_node: bool = Field(False, description="with --executor ray: let samples run at once on one node, "
                                                "one per GPU (they still never share a GPU)")
    environments: list[EnvironmentEntry] = Field(
        [], max_length=64, description="[[environments]]: measure every case in each, interleaved and paired "
                                       "(default: this interpreter only)")
    options: dict[str, list[str | int | bool]] = Field(
        {}, description="[options]: loading options to vary, each a list of values (device_map, attn_implementation, "
                        "parallel_loading, loading_workers, safetensors_read, torch_threads, loader_threads; "
                        "'default' leaves the "
                        "library's)")
    settings: list[SettingEntry] = Field(
        [], max_length=1024, description="[[settings]]: measure these (path, options) pairs instead of every "
                                         "combination of paths and [options]")
    compare: dict[str, Any] = Field({}, description="[compare]: how `loadbench compare` judges runs of this "
                                                    "suite, as written (see docs/REGRESSIONS.md)")
    until_decided: bool = Field(False, description="with environments: after `repeats` blocks, give one more block "
                                                   "a round to each case whose gated rows are still inconclusive, "
                                                   "until decided or a budget ends (docs/REGRESSIONS.md)")
    max_repeats: int | None = Field(None, ge=1, le=100_000,
                                    description="with until_decided: blocks per case at most (default 60)")
    max_minutes: float | None = Field(None, gt=0, le=7 * 24 * 60, allow_inf_nan=False,
                                      description="with until_decided: minutes of measuring at most")

    @model_validator(mode="after")
    def _sequential(self) -> Suite:
        if not self.until_decided:
            given = [k for k in ("max_repeats", "max_minutes") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{given[0]} is a budget of until_decided; turn that on, or use repeats")
            return self
        if len(self.environments) < 2:
            raise ValueError("until_decided measures until the paired comparison of environments is decided; "
                             "give two or more environments (--env base=PATH --env head=PATH)")
        if self.max_repeats is not None and self.max_repeats < self.repeats:
            raise ValueError(f"max_repeats ({self.max_repeats}) is below repeats ({self.repeats}), the blocks "
                             "taken before the first look; raise it or lower repeats")
        return self

    @model_validator(mode="after")
    def _settings(self) -> Suite:
        if not self.settings:
            return self
        if self.options or self.paths != list(PATH_NAMES):
            raise ValueError("settings names each case's path and options: drop paths and [options] from a "
                             "suite that lists [[settings]]")
        pairs = [(s.path, s.load_options()) for s in self.settings]
        if len(set(pairs)) != len(pairs):
            raise ValueError("a setting is listed twice: its samples would be doubled under one label")
        return self

    def setting_pairs(self) -> list[tuple[str, Any]]:
        """Every (path, LoadOptions) the run measures: the settings listed, or each path under each combination."""
        if self.settings:
            return [(entry.path, entry.load_options()) for entry in self.settings]
        return [(path, options) for options in self.option_combinations() for path in self.paths]

    def option_values(self) -> dict[str, list[Any]]:
        """Each option's values as written, from [options] or from the settings."""
        values: dict[str, list[Any]] = {name: list(given) for name, given in self.options.items()}
        for entry in self.settings:
            for name, value in entry.options.items():
                values.setdefault(name, []).append(value)
        return values

    @field_validator("compare")
    @classmethod
    def _compare(cls, table: dict[str, Any]) -> dict[str, Any]:
        # The one parser of this table, shared with `loadbench compare --suite`; kept as
        # written (percentages) so that run.json round-trips through Suite(**model_dump()).
        try:
            compare_settings_from_table(table)
        except CannotCompare as exc:
            raise ValueError(str(exc)) from None
        return table

    @field_validator("options", mode="before")
    @classmethod
    def _option_lists(cls, table: object) -> object:
        if not isinstance(table, dict):
            return table
        return {k: v if isinstance(v, list) else [v] for k, v in table.items()}

    @field_validator("options")
    @classmethod
    def _options(cls, table: dict[str, list[str | int | bool]]) -> dict[str, list[str | int | bool]]:
        for name, values in table.items():
            parsed = [_parsed_options({name: value})[name] for value in values]
            if not values:
                raise ValueError(f"loading option {name}: give at least one value")
            if len(set(parsed)) != len(parsed):
                raise ValueError(f"loading option {name}: values repeat")
        return table

    def option_combinations(self) -> list[Any]:
        """The loading options of every case: the product of the [options] axes (one default when none)."""
        from loadbench.loaders.options import combinations, parse_value

        return combinations({name: [parse_value(name, v) for v in values] for name, values in self.options.items()})

    @field_validator("paths")
    @classmethod
    def _paths(cls, values: list[str]) -> list[str]:
        for value in values:
            _check_path(value)
        return values

    @field_validator("paths", "device", "dtype", "cache", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("checkpoints")
    @classmethod
    def _distinct_checkpoints(cls, entries: list[CheckpointEntry]) -> list[CheckpointEntry]:
        seen = [entry.builtin or (entry.repo and f"{entry.repo}@{entry.revision}")
                or os.path.realpath(Path(entry.path or "").expanduser()) for entry in entries]
        if len(set(seen)) != len(seen):
            raise ValueError("a checkpoint is listed twice: its samples would be doubled under one label")
        return entries

    @field_validator("environments")
    @classmethod
    def _distinct_environments(cls, entries: list[EnvironmentEntry]) -> list[EnvironmentEntry]:
        names = [entry.name for entry in entries]
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"an environment name is given twice: {', '.join(twice)}; give each a name of its own")
        return entries

    @field_validator("paths", "device", "dtype", "cache")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("give at least one value")
        if len(set(values)) != len(values):
            raise ValueError("values repeat")
        return values

    @field_validator("device")
    @classmethod
    def _device(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _DEVICE.match(value):
                raise ValueError(f"{value!r} must be auto, cpu, cuda or cuda:N")
        return values

    def with_overrides(self, **overrides: object) -> Suite:
        """A copy with command-line options applied (None means not given)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return _validated(lambda: Suite(**{**self.model_dump(), **given}), "options")


def _validated(build, source: str) -> Suite:
    try:
        return build()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        if not where:  # a rule over several settings (until_decided and its budgets): its own words
            raise SuiteError(f"{source}: {first['msg'].removeprefix('Value error, ')}") from None
        raise SuiteError(f"{source}: {where}: {first['msg']}") from None


def suite_from_dict(data: object, source: str) -> Suite:
    """A suite from plain data (a run.json's ``suite``); SuiteError names ``source`` and the key."""
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: expected a table of suite settings, got {type(data).__name__}")
    return _validated(lambda: Suite(**data), source)


def load_suite(path: str | Path, allow: dict[str, bool] | None = None) -> Suite:
    """Read a suite file; relative checkpoint paths are relative to the file.

    ``trust_remote_code`` and ``allow_bin_weights`` set to true in the file are refused
    unless ``allow`` says the person running it gave the same flag.
    """
    allow = allow or {}
    path = Path(path)
    data = read_document(path, tomllib.loads, "TOML", "suite file", SuiteError)
    suite = _validated(lambda: Suite(**data), str(path))
    for key in ("trust_remote_code", "allow_bin_weights"):
        if getattr(suite, key) and not allow.get(key, False):
            # A suite file may come from anyone; running a checkpoint's code or unpickling its
            # weights is the person's choice at the command line, never a file's.
            raise SuiteError(f"{path}: {key} = true lets checkpoints run code on this machine; a suite file "
                             f"cannot turn it on: pass `{key}` if you trust them")
    entries = [
        entry if entry.path is None or Path(entry.path).expanduser().is_absolute()
        else entry.model_copy(update={"path": str((path.parent / entry.path).resolve())})
        for entry in suite.checkpoints
    ]
    environments = [
        env if env.python is None or Path(env.python).expanduser().is_absolute()
        else env.model_copy(update={"python": str((path.parent / env.python).absolute())})
        for env in suite.environments
    ]
    return suite.model_copy(update={"checkpoints": entries, "environments": environments})


def default_suite() -> Suite:
    """The embedded default: the built-in tiny checkpoints through all four paths."""
    from loadbench.loaders.checkpoints.builtin import DEFAULT_BUILTINS

    return Suite(checkpoints=[CheckpointEntry(builtin=name) for name in DEFAULT_BUILTINS])


def suite_for_dirs(dirs: list[str]) -> Suite:
    """``--checkpoint`` values: directories, built-in names (``tiny-llama``) or hub ids (``org/name@rev``).

    An existing directory always wins: ``models/bert`` on disk is that directory.
    """
    from loadbench.loaders.checkpoints.builtin import BUILTIN
    from loadbench.loaders.checkpoints.hub import is_hub_id, parse_hub_id

    def entry(value: str) -> CheckpointEntry:
        if why := unresolvable(value):
            raise SuiteError(f"--checkpoint {value}: {why}; give the checkpoint's directory itself")
        if os.path.lexists(Path(value).expanduser()):
            return CheckpointEntry(path=value)
        if value in BUILTIN:
            return CheckpointEntry(builtin=value)
        if is_hub_id(value):
            repo, revision = parse_hub_id(value)
            return CheckpointEntry(repo=repo, revision=revision)
        return CheckpointEntry(path=value)  # the planner says it does not exist

    return _validated(lambda: Suite(name="checkpoints", checkpoints=[entry(d) for d in dirs]), "--checkpoint")
