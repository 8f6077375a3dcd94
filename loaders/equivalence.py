"""Do two paths compute the same thing? A fast path that computes something else is not faster."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from loadbench.loaders.common import LoadRequest, backbone_hidden_states, place
from loadbench.loaders.options import LoadOptions

__all__ = ["TOLERANCE", "Equivalence", "compare_with_base"]

# Relative to the reference's largest magnitude: real checkpoints carry activations in
# the hundreds, and half precision keeps about three significant digits.
TOLERANCE = {"float32": 1e-4, "bfloat16": 5e-2, "float16": 1e-2}


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
    measurements, so the extra load never touches them.
    """
    from transformers import AutoModel

    plain = replace(request, options=LoadOptions())
    reference = place(AutoModel.from_pretrained(plain.checkpoint, **plain.model_kwargs()), plain)
    expected = backbone_hidden_states(reference, tokenizer, prompts)
    actual = backbone_hidden_states(backbone, tokenizer, prompts)
    if expected.shape != actual.shape:
        raise ValueError(f"hidden states shape {tuple(actual.shape)} differs from base {tuple(expected.shape)}")
    dtype = str(next(reference.parameters()).dtype).removeprefix("torch.")
    return Equivalence(
        max_abs_diff=float((expected - actual).abs().max()),
        scale=float(expected.abs().max()),
        tolerance=TOLERANCE.get(dtype, TOLERANCE["bfloat16"]),
    )
