"""The tokenizers of the built-in checkpoints, trained locally on a small fixed corpus.

Each family gets the kind of tokenizer its real checkpoints ship (byte-level or
SentencePiece-style BPE, WordPiece), with the same special tokens and framing, so the
loading paths meet what they would meet on a real checkpoint. Training is deterministic.
"""

from __future__ import annotations

import string
from typing import Any

__all__ = ["MAX_POSITIONS", "build_tokenizer"]

# The longest sequence a built-in takes: its tokenizer's model_max_length and its model's
# position embeddings alike.
MAX_POSITIONS = 128

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


def build_tokenizer(family: str) -> Any:
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
        model_max_length=MAX_POSITIONS,
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
        model_max_length=MAX_POSITIONS,
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
