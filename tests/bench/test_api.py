"""The Python API checks the types of its keywords: a wrong one is one UserError naming it, before anything runs."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

import loadbench
from loadbench import UserError

# Every public function, so that a new one cannot be left unchecked.
FUNCTIONS = tuple(name for name in loadbench.__all__ if name[0].islower() and not name.startswith("_"))

WRONG = [
    ("run", {"checkpoints": 5}, "run(): `checkpoints` must be a list of (str or Path) or None, not int (5)"),
    ("run", {"output": 5}, "run(): `output` must be a str or Path or None, not int (5)"),
    ("run", {"repeats": True}, "run(): `repeats` must be an int, not bool (True)"),
    ("run", {"repeats": "3"}, "run(): `repeats` must be an int, not str ('3')"),
    ("run", {"timeout_s": "10"}, "run(): `timeout_s` must be a number, not str ('10')"),
    ("run", {"device": 5}, "run(): `device` must be a list of str, not int (5)"),
    ("run", {"trust_remote_code": "yes"}, "run(): `trust_remote_code` must be True or False, not str ('yes')"),
    ("run", {"options": ["eager"]}, "run(): `options` must be a dict, not list (['eager'])"),
    ("run", {"max_parallel": True}, "run(): `max_parallel` must be an int or None, not bool (True)"),
    ("run", {"executor": 5}, "run(): `executor` must be a str or Executor or None, not int (5)"),
    ("run", {"progress": "yes"}, "run(): `progress` must be True or False or a function, not str ('yes')"),
    ("run", {"repeatz": 3}, "run(): no setting `repeatz`; the settings are the suite's fields: "),
    ("resume", {"run_dir": 5}, "resume(): `run_dir` must be a str or Path, not int (5)"),
    ("resume", {"run_dir": "r", "download": 1}, "resume(): `download` must be True or False, not int (1)"),
    ("report", {"runs": 5}, "report(): `runs` must be a str or Path or a list of (str or Path), not int (5)"),
    ("report", {"runs": "r", "format": 5}, "report(): `format` must be a str, not int (5)"),
    ("compare", {"baseline": "a", "candidate": "b", "alpha": "x"}, "compare(): `alpha` must be a number or None"),
    ("compare", {"baseline": "a", "candidate": "b", "thresholds": 5},
     "compare(): `thresholds` must be a dict of str to number or a list of str, not int (5)"),
    ("compare", {"baseline": "a", "fail_on_inconclusive": "no"},
     "compare(): `fail_on_inconclusive` must be True or False, not str ('no')"),
    ("baseline_save", {"runs": 5}, "baseline_save(): `runs` must be a str or Path or a list of (str or Path)"),
    ("baseline_list", {"baselines": 5}, "baseline_list(): `baselines` must be a str or Path or None, not int (5)"),
    ("build_environment", {"requirements": 5}, "build_environment(): `requirements` must be a list of str"),
    ("checkpoints", {"all": "yes"}, "checkpoints(): `all` must be True or False, not str ('yes')"),
    ("ceiling", {"directory": 5}, "ceiling(): `directory` must be a str or Path or None, not int (5)"),
    ("ceiling", {"refresh": 1}, "ceiling(): `refresh` must be True or False, not int (1)"),
    ("environments", {"everything": True}, "environments(): got an unexpected keyword argument 'everything'"),
    ("history_add", {"runs": "r", "labels": 5}, "history_add(): `labels` must be a list of str or None, not int (5)"),
    ("history", {"alpha": "0.1"}, "history(): `alpha` must be a number, not str ('0.1')"),
    ("history", {"alpha": 2.0}, "`alpha` must be between 0 and 1, not 2.0"),
    ("bisect", {"good": "1", "bad": "2", "package": 5}, "bisect(): `package` must be a str or None, not int (5)"),
    ("bisect", {"good": "1", "bad": "2"}, "give exactly one of `package` (a registry's releases) or `repo`"),
    ("bisect", {"good": "1", "bad": "2", "package": "p", "history": 5},
     "bisect(): `history` must be a str or Path or True or False, not int (5)"),
    ("history_report", {"output": None}, "history_report(): `output` must be a str or Path, not NoneType (None)"),
]


@pytest.mark.parametrize(("function", "kwargs", "message"), WRONG)
def test_a_wrong_type_is_one_user_error_naming_the_keyword(function: str, kwargs: dict[str, Any],
                                                           message: str) -> None:
    with pytest.raises(UserError) as caught:
        getattr(loadbench, function)(**kwargs)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_public_function_and_keyword_is_checked() -> None:
    """Each public function is wrapped, and each of its keywords refuses a value of no type it takes."""
    for function in FUNCTIONS:
        wrapped = getattr(loadbench, function)
        assert hasattr(wrapped, "__wrapped__"), function
        for keyword in inspect.signature(wrapped).parameters:
            if keyword == "settings":
                continue
            with pytest.raises(UserError, match=f"`{keyword}` must be"):
                wrapped(**{name: _right(name) for name in _required(wrapped) if name != keyword},
                        **{keyword: object()})


def _required(function: Any) -> list[str]:
    return [name for name, p in inspect.signature(function).parameters.items()
            if p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD]


def _right(name: str) -> Any:
    return {"requirements": ["x==1"], "run_dir": "r", "runs": "r", "baseline": "r", "output": "o", "good": "1",
            "bad": "2", "checkpoint": "tiny-llama"}[name]


def test_a_single_string_for_a_list_is_a_list_of_one(builtin, tmp_path: Path) -> None:
    """``checkpoints="DIR"`` is that one checkpoint (it used to be split into characters)."""
    result = loadbench.run(checkpoints=str(builtin("tiny-bert")), paths="base", repeats=1, warmups=0,
                           cache="warm", output=tmp_path / "run", reports=False)
    assert result.complete and result.samples == 1
    assert set(result.frame()["checkpoint"]) == {"tiny-bert"}
