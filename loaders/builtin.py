"""Tiny random-weight checkpoints built locally, so the harness needs no network.

Each built-in pairs a 2-layer, 64-wide model with a tokenizer trained on the small
corpus below.  They exist to exercise the loading paths (``AutoTokenizer``,
``AutoModel*``, ``pipeline``) in seconds, not to produce meaningful text.  Builds are
deterministic and cached under a path that includes ``BUILDER_VERSION``.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbench.errors import UserError

__all__ = [
    "BUILDER_VERSION",
    "BUILTIN",
    "DEFAULT_BUILTINS",
    "BuiltinSpec",
    "UnknownBuiltin",
    "build_checkpoint",
    "builtin_dir",
    "cache_root",
    "ensure_builtin",
    "is_built",
]

#: Bump whenever the recipe (corpus, configs, tokenizers, seed) changes, so a cache
#: built by an older recipe is never mistaken for the current one.
BUILDER_VERSION: int = 1

_SEED = 0  # one seed for all: tiny-llama-sharded then holds exactly tiny-llama's weights
_MARKER = "loadbench_builtin.json"  # written last; its presence means "complete"
_SHARD_SIZE = "100KB"  # tiny-llama is ~0.7 MB of fp32, so this gives several shards
_MAX_POS = 128

_CORPUS = """\
The river rises in the hills above the town and runs for many miles to the sea.
In spring the snow melts and the water grows fast and brown, carrying stones,
branches and mud past the old mill. The miller used to say that the river had a
mind of its own, and that no wall or gate could hold it for long. In summer the
water is low and clear, and children walk across it on the flat grey rocks while
their parents watch from the bank. Fish rest in the shade under the bridge.
The weather in this valley changes quickly. A bright morning can turn to rain
before noon, and a storm can pass over the ridge in less than an hour. Farmers
watch the clouds from the west, because the wind brings most of the rain from
that side. When the air feels heavy and warm, thunder is likely by evening. In
autumn a thick fog fills the low fields at dawn and lifts slowly as the sun
climbs. Winter nights are long and cold, and frost covers the windows until the
stove is lit. People here talk about the weather more than about anything else.
Machines changed the valley over a hundred years. First came the water wheel,
then the steam engine, and later the electric motor. A machine is only a set of
simple parts: a lever, a wheel, a gear, a spring, a shaft and a belt. Each part
moves another, and together they turn a small force into useful work. The old
engineers measured everything with care, wrote numbers in small books, and
checked each bolt twice before they started an engine. Today a computer watches
the pumps at the station, reads the level of the river every minute, and opens
the gates when the water climbs too high. Still, a person must walk along the
line each week, listen to the bearings, feel the heat of the motors, and look
for oil on the floor. A good mechanic can hear a problem before any sensor finds
it. The new turbine below the dam makes power for the town, the school and the
hospital. When the river is strong, the turbine runs at full speed and the
lights stay on all night; in a dry year the station buys power from the grid.
Rain, rivers and machines are linked in many ways. Rain fills the river, the
river turns the wheel, and the wheel drives the machine that grinds the grain or
makes the light. Scientists model the weather with large programs that divide
the sky into boxes and compute how heat, water and wind move between them. The
models are not perfect, but they are better every year, and a forecast for three
days ahead is now as good as a forecast for one day was long ago. Engineers use
these forecasts to plan repairs, to lower the reservoir before a big storm, and
to warn people who live near the water. A bridge, a boat, a pump and a clock all
follow the same rules of force and motion. Learning those rules takes patience,
but anyone who is curious can start by watching how things move: how a leaf
floats on a stream, how a kite climbs in the wind, or how a bicycle chain pulls
the wheel. Questions lead to tests, tests lead to answers, and answers lead to
better questions. That is how the valley learned to live with its river.
"""


@dataclass(frozen=True)
class BuiltinSpec:
    """A built-in checkpoint the harness can create offline and benchmark."""

    name: str
    architecture: str  # transformers class name, as in config.json "architectures"
    description: str  # one line shown by `loadbench checkpoints`
    default: bool  # part of the default benchmark suite
    sharded: bool = False  # save as several safetensors shards plus an index


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
    )
}

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
    target.parent.mkdir(parents=True, exist_ok=True)
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
    family = spec.name.removeprefix("tiny-").removesuffix("-sharded")
    tok = _build_tokenizer(family)
    model = _build_model(family, tok)
    with _quiet_progress():  # transformers 5 draws a "Writing model shards" bar even for one file
        model.save_pretrained(dest, **({"max_shard_size": _SHARD_SIZE} if spec.sharded else {}))
    tok.save_pretrained(dest)
    _write_marker(spec, dest)
    return dest


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


# --- tokenizers ---------------------------------------------------------------

# Special tokens per family; the trainers give them ids 0..n-1 in this order (duplicates once).
_BPE_SPECIALS: dict[str, dict[str, str | None]] = {
    "llama": {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "pad": "<pad>"},
    "gpt2": {"unk": None, "bos": "<|endoftext|>", "eos": "<|endoftext|>", "pad": "<|endoftext|>"},
    "qwen2": {"unk": None, "bos": None, "eos": "<|endoftext|>", "pad": "<|endoftext|>"},
    "t5": {"pad": "<pad>", "eos": "</s>", "unk": "<unk>", "bos": None},
    "bart": {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"},
}
# How each family frames (single, pair) sequences, as its real tokenizer does.
_BPE_TEMPLATES = {
    "llama": ("<s> $A", "<s> $A <s> $B"),
    "t5": ("$A </s>", "$A </s> $B </s>"),
    "bart": ("<s> $A </s>", "<s> $A </s> </s> $B </s>"),
}
_DECODER_ONLY = ("llama", "gpt2", "qwen2")
_WORDPIECE_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
_BPE_VOCAB = 768
_WORDPIECE_VOCAB = 640
_PUA = 0xF0000  # Unicode plane 15 (private use): never in the ASCII corpus
_QWEN2_SPLIT = (  # transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def _build_tokenizer(family: str) -> Any:
    """Train a tokenizer for `family` on the corpus and wrap it for transformers."""
    return _wordpiece_tokenizer(family) if family in ("bert", "distilbert") else _bpe_tokenizer(family)


def _bpe_tokenizer(family: str) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = _BPE_SPECIALS[family]
    tk = Tokenizer(models.BPE(unk_token=specials["unk"]))
    if family == "qwen2":
        # AutoTokenizer forces Qwen2Tokenizer for model_type "qwen2" whatever tokenizer_config.json
        # says, and that class rebuilds this pipeline from vocab+merges; train with it so both agree.
        tk.normalizer = normalizers.NFC()
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB,
        special_tokens=list(dict.fromkeys(t for t in specials.values() if t)),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any byte encodes: no UNK ever
        show_progress=False,
    )
    tk.train_from_iterator(_CORPUS.splitlines(keepends=True), trainer=trainer)
    if family in _BPE_TEMPLATES:
        single, pair = _BPE_TEMPLATES[family]
        used = sorted({t for t in single.split() if not t.startswith("$")})
        tk.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=[(t, tk.token_to_id(t)) for t in used]
        )
    kwargs: dict[str, Any] = {f"{k}_token": v for k, v in specials.items()}
    if family in _DECODER_ONLY:
        kwargs["padding_side"] = "left"  # batched generate() wants left padding for decoder-only models
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        model_input_names=["input_ids", "attention_mask"],  # generate() rejects unused token_type_ids
        model_max_length=_MAX_POS,
        clean_up_tokenization_spaces=False,
        **kwargs,
    )


def _wordpiece_tokenizer(family: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    sp = _WORDPIECE_SPECIALS
    norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    lines = [[w for w, _ in pre.pre_tokenize_str(norm.normalize_str(line))] for line in _CORPUS.splitlines()]
    tk = Tokenizer(models.WordPiece(_wordpiece_vocab(lines, list(sp.values())), unk_token=sp["unk"]))
    tk.normalizer, tk.pre_tokenizer, tk.decoder = norm, pre, decoders.WordPiece()
    cls, sep = sp["cls"], sp["sep"]
    tk.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tk.token_to_id(cls)), (sep, tk.token_to_id(sep))],
    )
    # DistilBERT's forward() takes no token_type_ids, and pipelines pass every tokenizer output.
    names = ["input_ids", "attention_mask"] + ([] if family == "distilbert" else ["token_type_ids"])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        model_input_names=names,
        model_max_length=_MAX_POS,
        do_lower_case=True,
        **{f"{k}_token": v for k, v in sp.items()},
    )


def _wordpiece_vocab(lines: list[list[str]], specials: list[str]) -> dict[str, int]:
    """Learn a WordPiece vocab deterministically.

    ``WordPieceTrainer`` numbers its "##x" pieces in hash-map order, so the vocab it learns
    changes from run to run.  Instead train a plain BPE (deterministic) on words whose
    non-initial characters are shifted into a private-use plane, then map tokens back: a
    token made of shifted characters is a "##" continuation piece.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    def shift(word: str) -> str:
        return word[0] + "".join(chr(_PUA + ord(c)) for c in word[1:])

    def unshift(tok: str) -> str:
        plain = "".join(chr(ord(c) - _PUA) if ord(c) >= _PUA else c for c in tok)
        return plain if tok in specials or ord(tok[0]) < _PUA else "##" + plain

    alnum = string.ascii_lowercase + string.digits  # full alphabet: unseen words split, not [UNK]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=_WORDPIECE_VOCAB,
        special_tokens=specials,
        initial_alphabet=list(alnum + string.punctuation) + [chr(_PUA + ord(c)) for c in alnum],
        show_progress=False,
    )
    bpe.train_from_iterator((" ".join(shift(w) for w in words) for words in lines), trainer=trainer)
    return {unshift(t): i for t, i in bpe.get_vocab().items()}


# --- models -------------------------------------------------------------------


def _build_model(family: str, tok: Any) -> Any:
    """Construct the random-weight model for `family`, seeded so builds are reproducible."""
    import torch
    import transformers as tf

    V, pad, bos, eos = len(tok), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id
    ids: dict[str, Any] = {"pad_token_id": pad, "bos_token_id": bos, "eos_token_id": eos}
    dims: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                            "num_attention_heads": 4}
    decoder = {**dims, **ids, "vocab_size": V, "max_position_embeddings": _MAX_POS, "num_key_value_heads": 2}
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
        cfg = tf.GPT2Config(vocab_size=V, n_positions=_MAX_POS, n_embd=64, n_layer=2, n_head=4, n_inner=128,
                            tie_word_embeddings=True, **ids)
        cls = tf.GPT2LMHeadModel
    elif family == "bert":
        # num_labels is one of PretrainedConfig's **kwargs, which BertConfig's typed signature leaves out.
        cfg = tf.BertConfig(**dims, vocab_size=V, max_position_embeddings=_MAX_POS, pad_token_id=pad,
                            num_labels=2,  # type: ignore[call-arg]
                            id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
        cls = tf.BertForSequenceClassification
    elif family == "distilbert":
        cfg = tf.DistilBertConfig(vocab_size=V, dim=64, hidden_dim=128, n_layers=2, n_heads=4,
                                  max_position_embeddings=_MAX_POS, pad_token_id=pad)
        cls = tf.DistilBertModel  # bare encoder, so saved keys carry no "distilbert." prefix
    elif family == "t5":
        cfg = tf.T5Config(**seq2seq, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4,
                          relative_attention_num_buckets=8, relative_attention_max_distance=_MAX_POS // 4,
                          decoder_start_token_id=pad)  # type: ignore[call-arg]  # T5 starts decoding from <pad>
        cls = tf.T5ForConditionalGeneration
    elif family == "bart":
        cfg = tf.BartConfig(**seq2seq, bos_token_id=bos, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                            decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                            max_position_embeddings=_MAX_POS, decoder_start_token_id=eos, forced_eos_token_id=eos)
        cls = tf.BartForConditionalGeneration  # BART starts decoding from </s>, like facebook/bart-*
    else:  # pragma: no cover - every BUILTIN family is handled above
        raise AssertionError(family)
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream untouched
        torch.manual_seed(_SEED)
        model = cls(cfg)
    return model.eval()
