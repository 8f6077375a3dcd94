"""Do two paths compute the same thing? A fast path that computes something else is not faster."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from loadbench.loaders.common import LoadRequest, backbone_hidden_states, place
from loadbench.loaders.options import LoadOptions

__all__ = ["TOLERANCE", "Equivalence", "NonFiniteOutput", "check_finite", "compare_with_base"]

# Relative to the reference's largest magnitude: real checkpoints carry activations in
# the hundreds, and half precision keeps about three significant digits.
TOLERANCE = {"float32": 1e-4, "bfloat16": 5e-2, "float16": 1e-2}


class NonFiniteOutput(ValueError):
    """Hidden states hold NaN or infinity: the path loads, but what it computes is unusable.

    Caught before any difference is taken, because a difference with NaN is NaN, which
    would read as "the paths disagree" when nothing computes a number at all.
    """


def _require_finite(hidden: Any, whose: str) -> None:
    import torch

    nan, inf = int(torch.isnan(hidden).sum()), int(torch.isinf(hidden).sum())
    if nan or inf:
        kinds = " and ".join(f"{kind} in {count}" for kind, count in (("NaN", nan), ("infinity", inf)) if count)
        raise NonFiniteOutput(f"{whose} hidden states are not finite ({kinds} of {hidden.numel()} values); "
                              "the checkpoint's weights or this load give no usable output")


def check_finite(backbone: Any, tokenizer: Any, prompts: list[str]) -> None:
    """Raise NonFiniteOutput unless the backbone's hidden states on ``prompts`` are all finite.

    The check every path gets, the reference itself included (it has nothing to be
    compared with, so without this a NaN model would pass it unremarked).
    """
    _require_finite(backbone_hidden_states(backbone, tokenizer, prompts), "this path's")


@dataclass(frozen=True)
class Equivalence:
    max_abs_diff: float
    scale: float  # the reference's max |value|
    tolerance: float  # relative

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance * max(1.0, self.scale)


def compare_with_base(request: LoadRequest, backbone: Any, tokenizer: Any, prompts: list[str]) -> Equivalence:
    """Load ``AutoModel`` with the same dtype and device, and no loading options, and compare
    last hidden states on ``prompts``.

    The reference is the plain load, so a loading option that changes what the model
    computes (an attention kernel, a placement) shows here too. Runs after the sample's
    measurements, so the extra load never touches them. Hidden states that are not
    finite, on either side, raise NonFiniteOutput.
    """
    from transformers import AutoModel

    plain = replace(request, options=LoadOptions())
    reference = place(AutoModel.from_pretrained(plain.checkpoint, **plain.model_kwargs()), plain)
    actual = backbone_hidden_states(backbone, tokenizer, prompts)
    _require_finite(actual, "this path's")
    expected = backbone_hidden_states(reference, tokenizer, prompts)
    _require_finite(expected, "the plain AutoModel load's")
    if expected.shape != actual.shape:
        raise ValueError(f"hidden states shape {tuple(actual.shape)} differs from base {tuple(expected.shape)}")
    dtype = str(next(reference.parameters()).dtype).removeprefix("torch.")
    return Equivalence(
        max_abs_diff=float((expected - actual).abs().max()),
        scale=float(expected.abs().max()),
        tolerance=TOLERANCE.get(dtype, TOLERANCE["bfloat16"]),
    )
