"""Tiny random-weight checkpoints built locally, so the harness needs no network.

Each built-in pairs a 2-layer, 64-wide model with a tokenizer trained on a small
corpus (builtin_tokenizers.py).  They exist to exercise the loading paths (``AutoTokenizer``,
``AutoModel*``, ``pipeline``) in seconds, not to produce meaningful text.  Builds are
deterministic and cached under a path that includes ``BUILDER_VERSION``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbench.errors import UserError
from loadbench.loaders.checkpoints.builtin_tokenizers import MAX_POSITIONS, build_tokenizer

__all__ = [
    "BUILDER_VERSION",
    "BUILTIN",
    "DEFAULT_BUILTINS",
    "LADDER",
    "BuiltinSpec",
    "CacheUnusable",
    "UnknownBuiltin",
    "build_checkpoint",
    "builtin_dir",
    "cache_root",
    "ensure_builtin",
    "is_built",
]

#: Bump whenever the recipe (corpus, configs, tokenizers, seed) changes, so a cache
#: built by an older recipe is never mistaken for the current one.
BUILDER_VERSION: int = 2  # 2: tokenizer_class every supported transformers can load

_SEED = 0  # one seed for all: tiny-llama-sharded then holds exactly tiny-llama's weights
_MARKER = "loadbench_builtin.json"  # written last; its presence means "complete"
_SHARD_SIZE = "100KB"  # tiny-llama is ~0.7 MB of fp32, so this gives several shards


@dataclass(frozen=True)
class BuiltinSpec:
    """A built-in checkpoint the harness can create offline and benchmark."""

    name: str
    architecture: str  # transformers class name, as in config.json "architectures"
    description: str  # one line shown by `loadbench checkpoints`
    default: bool  # part of the default benchmark suite
    sharded: bool = False  # save as several safetensors shards plus an index
    size: tuple[tuple[str, int], ...] = ()  # config fields that make a bigger model than the tiny 64-wide one
    save_dtype: str = "float32"

    @property
    def family(self) -> str:
        return self.name.removeprefix("tiny-").removesuffix("-sharded").split("-")[0]

def _ladder(hidden: int, intermediate: int, layers: int) -> tuple[tuple[str, int], ...]:
    return (("hidden_size", hidden), ("intermediate_size", intermediate), ("num_hidden_layers", layers),
            ("num_attention_heads", hidden // 64), ("num_key_value_heads", hidden // 64), ("vocab_size", 32000))


class CacheUnusable(UserError):
    """The cache directory for built-in checkpoints cannot be created or written."""


class UnknownBuiltin(UserError):
    """Raised for a built-in name that does not exist; the message lists the known ones."""

BUILTIN: dict[str, BuiltinSpec] = {
    s.name: s
    for s in (
        BuiltinSpec("tiny-llama", "LlamaForCausalLM", "Llama decoder, GQA, byte-level BPE", True),
        BuiltinSpec("tiny-bert", "BertForSequenceClassification", "BERT encoder + 2-label classifier, WordPiece", True),
        BuiltinSpec("tiny-t5", "T5ForConditionalGeneration", "T5 encoder-decoder, byte-level BPE", True),
        BuiltinSpec("tiny-gpt2", "GPT2LMHeadModel", "GPT-2 decoder, tied embeddings, byte-level BPE", False),
        BuiltinSpec("tiny-qwen2", "Qwen2ForCausalLM", "Qwen2 decoder, tied embeddings, byte-level BPE", False),
        BuiltinSpec("tiny-distilbert", "DistilBertModel", "DistilBERT bare encoder (no head), WordPiece", False),
        BuiltinSpec("tiny-bart", "BartForConditionalGeneration", "BART encoder-decoder, byte-level BPE", False),
        BuiltinSpec("tiny-llama-sharded", "LlamaForCausalLM", "tiny-llama's weights in several shards", False, True),
        # The size ladder: Llama shapes of realistic sizes (bfloat16, as checkpoints ship), where
        # reading the bytes outweighs the fixed cost of a load. Built on first use; not in the default suite.
        *(BuiltinSpec(f"llama-{label}", "LlamaForCausalLM", f"Llama, {label.upper()} of bfloat16 random weights",
                      False, size=_ladder(hidden, intermediate, layers), save_dtype="bfloat16")
          for label, hidden, intermediate, layers in (("40mb", 256, 688, 6), ("200mb", 768, 2048, 7),
                                                      ("800mb", 1024, 2816, 26))),
    )
}
LADDER: tuple[str, ...] = tuple(n for n, s in BUILTIN.items() if s.size)

DEFAULT_BUILTINS: tuple[str, ...] = tuple(n for n, s in BUILTIN.items() if s.default)

def _get_spec(name: str) -> BuiltinSpec:
    try:
        return BUILTIN[name]
    except KeyError:
        raise UnknownBuiltin(f"unknown built-in checkpoint {name!r}; known: {', '.join(BUILTIN)}") from None

def cache_root() -> Path:
    """Root of loadbench's cache: $LOADBENCH_CACHE_DIR, else $XDG_CACHE_HOME/loadbench, else ~/.cache/loadbench."""
    if explicit := os.environ.get("LOADBENCH_CACHE_DIR"):
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "loadbench"


def builtin_dir(name: str, cache_dir: Path | None = None) -> Path:
    """Where built-in `name` lives; versioned so a recipe change never reuses stale builds."""
    _get_spec(name)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / "checkpoints" / f"v{BUILDER_VERSION}" / name

def is_built(name: str, cache_dir: Path | None = None) -> bool:
    """True if a complete build is cached (dirs appear atomically, and the marker is written last)."""
    return (builtin_dir(name, cache_dir) / _MARKER).is_file()

def ensure_builtin(name: str, cache_dir: Path | None = None) -> Path:
    """Return the cached checkpoint dir, building it first if needed.

    The build goes into a temp dir beside the target and is renamed into place, so readers
    never see a half-written checkpoint and racing processes are harmless: whoever loses
    the rename discards its own copy.
    """
    target = builtin_dir(name, cache_dir)
    if is_built(name, cache_dir):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = "LOADBENCH_CACHE_DIR" if os.environ.get("LOADBENCH_CACHE_DIR") and cache_dir is None else "cache"
        raise CacheUnusable(f"{where} {target.parent.parent.parent}: cannot build built-in checkpoints there "
                            f"({exc.strerror or exc}); point LOADBENCH_CACHE_DIR at a writable directory") from None
    tmp = _fresh_sibling(target, "tmp")
    try:
        build_checkpoint(name, tmp)
        if target.exists() and not is_built(name, cache_dir):
            # A leftover without the marker (interrupted copy, manual edit): move it aside first.
            trash = _fresh_sibling(target, "stale")
            try:
                os.rename(target, trash / name)
            except FileNotFoundError:
                pass  # another process moved it already
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_built(name, cache_dir):  # only a lost race if the winner's copy is complete
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left to remove after a successful rename
    return target

def _fresh_sibling(target: Path, kind: str) -> Path:
    """A new uniquely named hidden dir beside `target` (same filesystem, so rename is atomic)."""
    path = target.with_name(f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    path.mkdir()  # unlike tempfile.mkdtemp (0700) this honours the umask, so the final dir is normal
    return path

def build_checkpoint(name: str, dest: Path) -> Path:
    """Build built-in `name` (weights, config, generation config, tokenizer) into `dest`; return `dest`."""
    spec = _get_spec(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(spec.family)
    model = _build_model(spec.family, tok, dict(spec.size))
    if spec.save_dtype != "float32":
        import torch

        model.to(getattr(torch, spec.save_dtype))
    with _quiet_progress():  # transformers 5 draws a "Writing model shards" bar even for one file
        model.save_pretrained(dest, **({"max_shard_size": _SHARD_SIZE} if spec.sharded else {}))
    tok.save_pretrained(dest)
    _portable_tokenizer_class(dest)
    _write_marker(spec, dest)
    return dest


def _portable_tokenizer_class(dest: Path) -> None:
    """Name the tokenizer class by the name every supported transformers knows.

    transformers 5 saves a fast tokenizer as ``TokenizersBackend``, a class 4.x does not
    have; ``PreTrainedTokenizerFast`` is the same tokenizer in 4.x and an alias of it in 5.x,
    so checkpoints built here load on either side of a version sweep.
    """
    config_path = dest / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")

@contextmanager
def _quiet_progress() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()

def _write_marker(spec: BuiltinSpec, dest: Path) -> None:
    """Record provenance; being written last, it also tells `is_built` the build completed."""
    import tokenizers
    import torch
    import transformers

    info = {"name": spec.name, "architecture": spec.architecture, "builder_version": BUILDER_VERSION,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "torch": torch.__version__}
    (dest / _MARKER).write_text(json.dumps(info, indent=2) + "\n")

def _build_model(family: str, tok: Any, size: dict[str, int] | None = None) -> Any:
    """Construct the random-weight model for `family`, seeded so builds are reproducible."""
    import torch
    import transformers as tf

    V, pad, bos, eos = len(tok), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id
    ids: dict[str, Any] = {"pad_token_id": pad, "bos_token_id": bos, "eos_token_id": eos}
    dims: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                            "num_attention_heads": 4}
    decoder: dict[str, Any] = {**dims, **ids, "vocab_size": V, "max_position_embeddings": MAX_POSITIONS,
                               "num_key_value_heads": 2, **(size or {})}
    seq2seq: dict[str, Any] = {"vocab_size": V, "d_model": 64, "pad_token_id": pad, "eos_token_id": eos,
                               "tie_word_embeddings": True}
    # Any: the config and model classes of the families differ; each pair belongs together.
    cfg: Any
    cls: Any
    if family == "llama":
        cfg, cls = tf.LlamaConfig(**decoder, tie_word_embeddings=False), tf.LlamaForCausalLM
    elif family == "qwen2":
        cfg, cls = tf.Qwen2Config(**decoder, tie_word_embeddings=True), tf.Qwen2ForCausalLM
    elif family == "gpt2":
        cfg = tf.GPT2Config(vocab_size=V, n_positions=MAX_POSITIONS, n_embd=64, n_layer=2, n_head=4, n_inner=128,
                            tie_word_embeddings=True, **ids)
        cls = tf.GPT2LMHeadModel
    elif family == "bert":
        # num_labels is one of PretrainedConfig's **kwargs, which BertConfig's typed signature leaves out.
        cfg = tf.BertConfig(**dims, vocab_size=V, max_position_embeddings=MAX_POSITIONS, pad_token_id=pad,
                            num_labels=2,  # type: ignore[call-arg]
                            id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
        cls = tf.BertForSequenceClassification
    elif family == "distilbert":
        cfg = tf.DistilBertConfig(vocab_size=V, dim=64, hidden_dim=128, n_layers=2, n_heads=4,
                                  max_position_embeddings=MAX_POSITIONS, pad_token_id=pad)
        cls = tf.DistilBertModel  # bare encoder, so saved keys carry no "distilbert." prefix
    elif family == "t5":
        cfg = tf.T5Config(**seq2seq, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4,
                          relative_attention_num_buckets=8, relative_attention_max_distance=MAX_POSITIONS // 4,
                          decoder_start_token_id=pad)  # type: ignore[call-arg]  # T5 starts decoding from <pad>
        cls = tf.T5ForConditionalGeneration
    elif family == "bart":
        cfg = tf.BartConfig(**seq2seq, bos_token_id=bos, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                            decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                            max_position_embeddings=MAX_POSITIONS, decoder_start_token_id=eos, forced_eos_token_id=eos)
        cls = tf.BartForConditionalGeneration  # BART starts decoding from </s>, like facebook/bart-*
    else:  # pragma: no cover - every BUILTIN family is handled above
        raise AssertionError(family)
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream untouched
        torch.manual_seed(_SEED)
        model = cls(cfg)
    return model.eval()
