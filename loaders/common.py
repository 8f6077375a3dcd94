"""What the four loading paths share: the request, the loaded result, the workloads.

Each path decides how a model is obtained; how it is then exercised (tokenize, generate
or forward) is the same code for all of them, so their numbers differ only by the load.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadbench.loaders.options import LoadOptions

__all__ = [
    "LoadRequest",
    "Loaded",
    "NotApplicable",
    "import_model_class",
    "torch_dtype",
    "dtype_keyword",
    "encode",
    "ensure_pad_token",
    "generate_fixed",
    "forward_tokens",
    "backbone_hidden_states",
    "generation_kwargs",
    "decoder_start_ids",
    "resident_dtype",
    "resident_weight_bytes",
    "attn_implementation",
    "place",
    "timed_phase",
    "set_phase_timer",
]

PhaseTimer = Callable[[str], AbstractContextManager[None]]
_phase_timer: PhaseTimer = lambda name: nullcontext()  # noqa: E731


def timed_phase(name: str) -> AbstractContextManager[None]:
    """Count a block as one of the load's phases (``weights_s`` …), for loading code that
    does not go through the ``from_pretrained`` calls the worker times; a no-op elsewhere."""
    return _phase_timer(name)


def set_phase_timer(timer: PhaseTimer) -> None:
    """Called by the worker that times phases: loaders never reach up into it."""
    global _phase_timer
    _phase_timer = timer


class NotApplicable(Exception):
    """This path cannot serve this task; the message is the reason shown to the user."""


@dataclass(frozen=True)
class LoadRequest:
    """One load as a user would ask for it."""

    checkpoint: Path
    task: str
    device: str = "cpu"
    dtype: str = "auto"
    trust_remote_code: bool = False
    options: LoadOptions = field(default_factory=LoadOptions)

    def model_kwargs(self) -> dict[str, Any]:
        return {dtype_keyword(): torch_dtype(self.dtype), "trust_remote_code": self.trust_remote_code,
                **self.options.model_kwargs()}


def place(model: Any, request: LoadRequest) -> Any:
    """Move a loaded model to the request's device, unless a device_map already placed it; eval mode."""
    if request.options.device_map is None:
        model.to(request.device)
    return model.eval()


def dtype_keyword() -> str:
    """``from_pretrained``'s name for the dtype: ``dtype`` since transformers 4.56, ``torch_dtype`` before.

    Older releases pass an unknown keyword on to the model's ``__init__`` or to generate(),
    which then fail far from the cause; the newer ones warn that ``torch_dtype`` is deprecated.
    """
    from importlib.metadata import version

    from loadbench.vocabulary import release

    return "dtype" if (release(version("transformers")) or (0, 0)) >= (4, 56) else "torch_dtype"


@dataclass
class Loaded:
    """A loaded path: ready to run its workload and to show its backbone's hidden states.

    Exactly one of ``generate`` (prompts, new tokens, streamer) and ``forward`` (prompts)
    is set: it is what the path is for. Neither returns a count: the streamer counts
    generated tokens the same way for every path, and the caller counts prompt tokens.
    """

    tokenizer: Any
    model: Any  # the torch module that holds the backbone
    backbone: Any  # the module whose hidden states are compared with the base path
    generate: Callable[[list[str], int, Any], None] | None = None
    forward: Callable[[list[str]], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def import_model_class(model_type: str, mapping: str = "MODEL_MAPPING_NAMES") -> type | None:
    """Import an architecture's class, and so its modeling module, which transformers
    imports lazily on first use: a worker does this before its clock starts.

    None for an architecture transformers does not list: its code ships with the
    checkpoint (``--trust-remote-code``), and importing it is part of that load.
    """
    import transformers
    from transformers.models.auto import modeling_auto

    class_name = getattr(modeling_auto, mapping).get(model_type)
    return getattr(transformers, class_name) if class_name is not None else None


def torch_dtype(name: str) -> Any:
    """The torch dtype for a suite's dtype name; "auto" keeps the checkpoint's."""
    if name == "auto":
        return "auto"
    import torch

    return getattr(torch, name)


def ensure_pad_token(tokenizer: Any) -> Any:
    """Give a tokenizer without a pad token its EOS token, as users of GPT-2-style models do.

    Without one, ``padding=True`` fails even for a single prompt.
    """
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode(tokenizer: Any, prompts: list[str], device: str) -> dict[str, Any]:
    return tokenizer(prompts, return_tensors="pt", padding=True).to(device)


def decoder_start_ids(model: Any) -> Any:
    import torch

    start = model.config.decoder_start_token_id
    if start is None:
        start = model.config.pad_token_id
    return torch.full((1, 1), int(start), dtype=torch.long, device=model.device)


def generation_kwargs(tokenizer: Any, new_tokens: int) -> dict[str, Any]:
    """Deterministic, fixed-length greedy decoding: same work for every path."""
    kwargs: dict[str, Any] = {
        "do_sample": False,
        "num_beams": 1,  # a checkpoint's or a pipeline's default may be beam search, which streams nothing
        "max_new_tokens": new_tokens,
        "min_new_tokens": new_tokens,
    }
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is not None:
        kwargs["pad_token_id"] = pad
    return kwargs


def generate_fixed(model: Any, tokenizer: Any) -> Callable[[list[str], int, Any], None]:
    """A ``generate`` workload over ``model.generate``."""

    if not model.config.is_encoder_decoder:
        tokenizer.padding_side = "left"  # decoder-only models continue the prompt's last token

    def run(prompts: list[str], new_tokens: int, streamer: Any) -> None:
        import torch

        enc = encode(tokenizer, prompts, str(model.device))
        with torch.inference_mode():
            model.generate(**enc, **generation_kwargs(tokenizer, new_tokens), streamer=streamer)

    return run


def forward_tokens(
    model: Any, tokenizer: Any, decoder_start: bool = False
) -> Callable[[list[str]], None]:
    """A ``forward`` workload: one call as a user makes it (tokenize + forward).

    ``decoder_start`` feeds a bare encoder-decoder (T5Model) the one decoder token it
    needs; task heads and the custom model build their decoder input themselves.
    """

    def run(prompts: list[str]) -> None:
        import torch

        enc = encode(tokenizer, prompts, str(model.device))
        kwargs = {}
        if decoder_start:
            kwargs["decoder_input_ids"] = decoder_start_ids(model).expand(enc["input_ids"].shape[0], 1)
        with torch.inference_mode():
            model(**enc, **kwargs)

    return run


def backbone_hidden_states(backbone: Any, tokenizer: Any, prompts: list[str]) -> Any:
    """The backbone's last hidden states, the quantity every path must agree on.

    Taken from ``output_hidden_states`` rather than a named sub-module, because some task
    classes (T5) hold their backbone's parts directly instead of a base model. For
    encoder-decoders it is the encoder's output: each head builds its decoder input its
    own way (T5ForSequenceClassification shifts the prompt), so only the encoder sees
    the same input on every path.
    """
    import torch

    enc = encode(tokenizer, prompts, str(backbone.device))
    with torch.inference_mode():
        if backbone.config.is_encoder_decoder:
            return backbone.get_encoder()(**enc).last_hidden_state.float().cpu()
        out = backbone(**enc, output_hidden_states=True, return_dict=True)
    return out.hidden_states[-1].float().cpu()


def resident_dtype(model: Any) -> str:
    """The dtype the weights actually have after loading (v5 defaults to the checkpoint's)."""
    param = next(iter(model.parameters()), None)
    return str(param.dtype).removeprefix("torch.") if param is not None else "unknown"


def resident_weight_bytes(model: Any) -> int:
    """Bytes of the model's parameters where they now live (tied weights counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def attn_implementation(model: Any) -> str:
    return str(getattr(model.config, "_attn_implementation", None) or "unknown")
