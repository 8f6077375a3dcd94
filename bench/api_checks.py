"""The Python API's keyword types, checked at the call: a wrong type is one UserError naming the keyword.

Python does not check annotations, and what is passed on would fail far away: a string
where a list is expected is split into characters, ``True`` is taken for 1, a number
where a path is expected is a ``TypeError`` deep inside. ``checked`` reads a function's
own annotations, so the check and the signature cannot drift apart, and ``check_settings``
does the same for the suite fields ``run`` takes as ``**settings``.

One liberty: a single string (or path) where a list of them is expected is taken as a
one-item list, as a suite file's ``device = "cpu"`` is.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import os
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from loadbench.errors import UserError

__all__ = ["ArgumentTypeError", "check_settings", "checked"]

F = TypeVar("F", bound=Callable[..., Any])
_SEQUENCES = (collections.abc.Sequence, collections.abc.Iterable)
_NAMES: dict[Any, tuple[str, str]] = {int: ("an", "int"), float: ("a", "number"), str: ("a", "str"),
                                       dict: ("a", "dict")}


class ArgumentTypeError(UserError):
    """A keyword given a value of the wrong type."""


def _is_protocol(kind: Any) -> bool:
    return isinstance(kind, type) and bool(getattr(kind, "_is_protocol", False))


def _describe(kind: Any, article: bool = True) -> str:
    """How a message names an annotation: ``a str or Path``, ``a list of str``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a, article) for a in args if a is not type(None))
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if origin in _SEQUENCES or origin is list:
        item = _describe(args[0], article=False) if args else ""
        return f"a list of {f'({item})' if ' or ' in item else item}" if args else "a list"
    if origin in (collections.abc.Mapping, dict):
        return (f"a dict of {_describe(args[0], False)} to {_describe(args[1], False)}" if args else "a dict")
    if origin is collections.abc.Callable or kind is collections.abc.Callable:
        return "a function"
    if kind is bool:
        return "True or False"
    if kind in _NAMES:
        return f"{_NAMES[kind][0]} {_NAMES[kind][1]}" if article else _NAMES[kind][1]
    if kind is Any:
        return "anything"
    return getattr(kind, "__name__", str(kind))


def _fits(value: Any, kind: Any) -> bool:
    """Whether ``value`` is of the annotated ``kind`` (the few shapes the API's signatures use)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if kind is type(None) or kind is None:
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin is collections.abc.Callable or kind is collections.abc.Callable:
        return callable(value)
    if origin in _SEQUENCES or origin is list:
        if isinstance(value, str | bytes | os.PathLike) or not isinstance(value, list | tuple | set | frozenset):
            return False
        return not args or all(_fits(item, args[0]) for item in value)
    if origin in (collections.abc.Mapping, dict):
        return isinstance(value, collections.abc.Mapping) and (
            not args or all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items()))
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is os.PathLike or getattr(kind, "__name__", None) == "Path":
        return isinstance(value, os.PathLike)
    if _is_protocol(kind):  # an Executor: any object with the protocol's methods
        needed = [n for n, v in vars(kind).items() if not n.startswith("_") and callable(v)]
        return not isinstance(value, str | int | float | bool) and all(hasattr(value, n) for n in needed)
    if isinstance(kind, type):
        return isinstance(value, kind)
    return True  # a shape this checker does not read: the callee decides


def _one_item_list(value: Any, kind: Any) -> Any:
    """A lone string or path where the annotation also takes a list of them: that list of one."""
    if not isinstance(value, str | os.PathLike) or _fits(value, kind):
        return value
    members = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    for member in members:
        if typing.get_origin(member) in (*_SEQUENCES, list) and _fits([value], member):
            return [value]
    return value


def _complain(function: str, keyword: str, value: Any, kind: Any) -> ArgumentTypeError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    none = " or None" if _fits(None, kind) else ""
    return ArgumentTypeError(f"{function}(): `{keyword}` must be {_describe(kind)}{none}, not "
                             f"{type(value).__name__} ({shown})")


def checked(function: F) -> F:
    """``function`` with each argument checked against its annotation before it runs."""
    signature = inspect.signature(function)
    kinds: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        annotation = parameter.annotation
        kinds[name] = eval(annotation, function.__globals__) if isinstance(annotation, str) else annotation

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:  # a keyword it does not take, or one missing
            raise ArgumentTypeError(f"{function.__name__}(): {exc}") from None
        for name, kind in kinds.items():
            if name not in bound.arguments:
                continue
            value = bound.arguments[name] = _one_item_list(bound.arguments[name], kind)
            if not _fits(value, kind):
                raise _complain(function.__name__, name, value, kind)
        return function(*bound.args, **bound.kwargs)

    return typing.cast(F, call)


def check_settings(function: str, settings: dict[str, Any], model: Any) -> None:
    """``**settings`` of ``function``: each a field of ``model`` (the Suite) with a value of its type.

    None leaves the suite's value. A field that holds tables (checkpoints, environments)
    is left to the model's own validation, whose message already names the key.
    """
    fields = model.model_fields
    for name, value in settings.items():
        if name not in fields:
            raise ArgumentTypeError(f"{function}(): no setting `{name}`; the settings are the suite's fields: "
                                    f"{', '.join(sorted(fields))}")
        kind = fields[name].annotation
        if value is None or _holds_models(kind):
            continue
        if typing.get_origin(kind) is list and isinstance(value, str):
            continue  # one value for a list setting: the suite takes it as a list of one
        if typing.get_origin(kind) is dict:
            kind = dict  # a table ([options], [compare]): the suite's validation reads its values
        if not _fits(value, kind):
            raise _complain(function, name, value, kind)


def _holds_models(kind: Any) -> bool:
    args = typing.get_args(kind)
    return any(isinstance(a, type) and hasattr(a, "model_fields") for a in args) or (
        isinstance(kind, type) and hasattr(kind, "model_fields"))
