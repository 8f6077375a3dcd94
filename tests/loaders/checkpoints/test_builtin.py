"""Tests for loadbench.loaders.checkpoints.builtin: the tiny offline checkpoints the harness benchmarks."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from loadbench.loaders.checkpoints import builtin as B

ALL = [n for n in B.BUILTIN if n not in B.LADDER]  # the tiny ones; the ladder is checked by size below
CAUSAL = [n for n, s in B.BUILTIN.items() if n in ALL and s.architecture.endswith(("ForCausalLM", "LMHeadModel"))]
SEQ2SEQ = [n for n, s in B.BUILTIN.items() if n in ALL and s.architecture.endswith("ForConditionalGeneration")]
PROMPT = "the river"


@pytest.fixture(scope="module", autouse=True)
def _offline_and_isolated(tmp_path_factory: pytest.TempPathFactory):
    """No network, and any accidental use of the default cache lands in a throwaway dir."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("LOADBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("default-cache-must-stay-unused")))
        yield


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loadbench-cache")


@pytest.fixture(scope="module")
def built(cache: Path) -> dict[str, Path]:
    return {name: B.ensure_builtin(name, cache) for name in ALL}


def _auto_class(architecture: str):
    """The Auto* class whose mapping lists `architecture` (AutoModel only for bare models)."""
    import transformers
    from transformers.models.auto import modeling_auto as ma

    for mapping, auto in [
        (ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, "AutoModelForCausalLM"),
        (ma.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES, "AutoModelForSeq2SeqLM"),
        (ma.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES, "AutoModelForSequenceClassification"),
        (ma.MODEL_MAPPING_NAMES, "AutoModel"),
    ]:
        if architecture in mapping.values():
            return getattr(transformers, auto)
    raise AssertionError(f"no Auto class maps to {architecture}")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# --- registry and paths -----------------------------------------------------------


def test_registry_shape():
    assert B.DEFAULT_BUILTINS == ("tiny-llama", "tiny-bert", "tiny-t5")
    assert set(ALL) == {"tiny-llama", "tiny-bert", "tiny-t5", "tiny-gpt2", "tiny-qwen2",
                        "tiny-distilbert", "tiny-bart", "tiny-llama-sharded"}
    assert B.LADDER == ("llama-40mb", "llama-200mb", "llama-800mb")
    assert all(name == spec.name for name, spec in B.BUILTIN.items())
    assert [n for n, s in B.BUILTIN.items() if s.default] == list(B.DEFAULT_BUILTINS)
    assert [n for n, s in B.BUILTIN.items() if s.sharded] == ["tiny-llama-sharded"]
    assert all(s.description and "\n" not in s.description for s in B.BUILTIN.values())
    import transformers

    assert all(hasattr(transformers, s.architecture) for s in B.BUILTIN.values())


def test_import_is_cheap():
    code = ("import sys, loadbench.loaders.checkpoints.builtin; "
            "print(sorted({'torch', 'transformers', 'tokenizers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cache_root_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("LOADBENCH_CACHE_DIR", str(tmp_path / "lb"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert B.cache_root() == tmp_path / "lb"
    assert B.builtin_dir("tiny-bert") == tmp_path / "lb" / "checkpoints" / f"v{B.BUILDER_VERSION}" / "tiny-bert"
    expected = tmp_path / "x" / "checkpoints" / f"v{B.BUILDER_VERSION}" / "tiny-bert"
    assert B.builtin_dir("tiny-bert", tmp_path / "x") == expected
    monkeypatch.delenv("LOADBENCH_CACHE_DIR")
    assert B.cache_root() == tmp_path / "xdg" / "loadbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert B.cache_root() == tmp_path / "home" / ".cache" / "loadbench"


@pytest.mark.parametrize("call", [B.builtin_dir, B.is_built, B.ensure_builtin,
                                  lambda n: B.build_checkpoint(n, Path("x"))])
def test_unknown_name(call, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(B.UnknownBuiltin) as exc:
        call("tiny-nope")
    msg = str(exc.value)
    assert isinstance(exc.value, ValueError) and "\n" not in msg and "tiny-nope" in msg
    assert all(name in msg for name in ALL)
    assert list(tmp_path.iterdir()) == []  # nothing created


# --- built checkpoints ------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_builds_and_loads(built: dict[str, Path], name: str):
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path, spec = built[name], B.BUILTIN[name]
    assert path == B.builtin_dir(name, path.parents[2]) and B.is_built(name, path.parents[2])
    cfg = AutoConfig.from_pretrained(path)
    assert cfg.architectures == [spec.architecture]
    handler = _Collect()
    logging.getLogger("transformers").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tok = AutoTokenizer.from_pretrained(path)
            model, info = _auto_class(spec.architecture).from_pretrained(path, output_loading_info=True)
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert type(model).__name__ == spec.architecture
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    assert [str(w.message) for w in caught] == [] and [r.getMessage() for r in handler.records] == []
    # Tokenizer and config agree, and the loaded tokenizer behaves exactly like tokenizer.json
    # (AutoTokenizer may substitute a model-specific class that rebuilds the pipeline).
    assert 500 <= len(tok) == cfg.vocab_size <= 1000
    for attr in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if getattr(cfg, attr, None) is not None:
            assert getattr(cfg, attr) == getattr(tok, attr), attr
    assert tok.pad_token_id is not None
    # Decomposed "e\u0301" tells an NFC-normalizing pipeline apart from one without normalizer.
    text = "Rain fills the river.\nThe turbine hums at 42 rpm! Unseen: zebra-xylophone, cafe\u0301."
    raw = Tokenizer.from_file(str(path / "tokenizer.json"))
    assert tok(text)["input_ids"] == raw.encode(text).ids
    assert tok.unk_token_id not in tok(text)["input_ids"]
    # The backbone loads with no missing weights (head weights may be reported unexpected).
    base, base_info = AutoModel.from_pretrained(path, output_loading_info=True)
    assert base_info["missing_keys"] == set()
    assert all(k.startswith(("lm_head", "classifier", "final_logits_bias")) for k in base_info["unexpected_keys"])


@pytest.mark.parametrize(("name", "megabytes"), [("llama-40mb", 40), ("llama-200mb", 200), ("llama-800mb", 800)])
def test_ladder_sizes_are_what_their_names_say(name: str, megabytes: int) -> None:
    """Counted on the meta device: the shapes a build makes, without building a gigabyte."""
    import torch
    import transformers

    spec = B.BUILTIN[name]
    config = transformers.LlamaConfig(**dict(spec.size), tie_word_embeddings=False)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    size = sum(p.numel() for p in model.parameters()) * torch.finfo(getattr(torch, spec.save_dtype)).bits // 8
    assert size == pytest.approx(megabytes * 1e6, rel=0.07)
    assert not spec.default


def test_the_smallest_ladder_rung_builds_in_bfloat16_and_generates(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = B.ensure_builtin("llama-40mb", tmp_path)
    from loadbench.loaders.common import dtype_keyword

    model = AutoModelForCausalLM.from_pretrained(path, **{dtype_keyword(): "auto"})
    assert next(model.parameters()).dtype == torch.bfloat16
    assert 40e6 < (path / "model.safetensors").stat().st_size < 45e6
    tok = AutoTokenizer.from_pretrained(path)
    out = model.generate(**tok(PROMPT, return_tensors="pt"), max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out.shape[1] == len(tok(PROMPT)["input_ids"]) + 3


@pytest.mark.parametrize("name", ALL)
def test_tiny_dims(built: dict[str, Path], name: str):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(built[name])  # attribute_map gives every family the same names
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (64, 2, 4)
    if "t5" not in name:  # T5 uses relative positions
        assert cfg.max_position_embeddings == 128


def test_family_specific_config(built: dict[str, Path]):
    from transformers import AutoConfig, AutoTokenizer

    t5, t5_tok = AutoConfig.from_pretrained(built["tiny-t5"]), AutoTokenizer.from_pretrained(built["tiny-t5"])
    assert t5.decoder_start_token_id == t5.pad_token_id == t5_tok.pad_token_id
    assert t5_tok(PROMPT)["input_ids"][-1] == t5_tok.eos_token_id  # T5 appends </s>
    bert = AutoConfig.from_pretrained(built["tiny-bert"])
    assert bert.num_labels == 2 and bert.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    assert bert.label2id == {"NEGATIVE": 0, "POSITIVE": 1}
    bert_tok = AutoTokenizer.from_pretrained(built["tiny-bert"])
    assert bert_tok.convert_ids_to_tokens(bert_tok(PROMPT)["input_ids"]) == ["[CLS]", "the", "river", "[SEP]"]
    assert "token_type_ids" in bert_tok(PROMPT)
    assert "token_type_ids" not in AutoTokenizer.from_pretrained(built["tiny-distilbert"])(PROMPT)
    llama_tok = AutoTokenizer.from_pretrained(built["tiny-llama"])
    assert llama_tok(PROMPT)["input_ids"][0] == llama_tok.bos_token_id
    for name in CAUSAL:
        assert AutoTokenizer.from_pretrained(built[name]).padding_side == "left", name
    bart = AutoConfig.from_pretrained(built["tiny-bart"])
    assert bart.decoder_start_token_id == bart.eos_token_id
    from safetensors import safe_open

    with safe_open(built["tiny-distilbert"] / "model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("distilbert.") for k in keys)


@pytest.mark.parametrize("name", CAUSAL + SEQ2SEQ)
def test_generate_exactly_8_new_tokens(built: dict[str, Path], name: str):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[name])
    auto = AutoModelForCausalLM if name in CAUSAL else AutoModelForSeq2SeqLM
    model = auto.from_pretrained(built[name])
    enc = tok(PROMPT, return_tensors="pt")
    out = model.generate(**enc, do_sample=False, max_new_tokens=8, min_new_tokens=8)
    # Decoder-only output echoes the prompt; seq2seq output starts with the decoder start token.
    prefix = enc["input_ids"].shape[1] if name in CAUSAL else 1
    assert out.shape == (1, prefix + 8)
    batch = tok([PROMPT, "a machine is only a set of simple parts"], return_tensors="pt", padding=True)
    assert batch["attention_mask"].sum() < batch["attention_mask"].numel()  # padding really happened
    assert model.generate(**batch, do_sample=False, max_new_tokens=8, min_new_tokens=8).shape[1] == (
        batch["input_ids"].shape[1] + 8 if name in CAUSAL else 9
    )


@pytest.mark.parametrize("name", CAUSAL)
def test_text_generation_pipeline(built: dict[str, Path], name: str):
    from transformers import pipeline

    result = pipeline("text-generation", model=str(built[name]))(PROMPT, max_new_tokens=4, do_sample=False)
    assert result[0]["generated_text"].startswith(PROMPT)


def test_classification_and_feature_pipelines(built: dict[str, Path]):
    from transformers import pipeline

    scores = pipeline("text-classification", model=str(built["tiny-bert"]))(["the river is high", "rain"])
    assert [s["label"] in ("NEGATIVE", "POSITIVE") for s in scores] == [True, True]
    for name in ("tiny-bert", "tiny-distilbert"):
        feats = pipeline("feature-extraction", model=str(built[name]))(PROMPT)
        assert (len(feats), len(feats[0]), len(feats[0][0])) == (1, 4, 64)  # [CLS] the river [SEP]


# --- determinism and layout -------------------------------------------------------


def test_deterministic(built: dict[str, Path], tmp_path: Path):
    import torch
    from safetensors.torch import load_file

    for name in ALL:
        torch.manual_seed(1234 + len(name))  # the caller's RNG state must not matter ...
        state = torch.random.get_rng_state()
        again = B.build_checkpoint(name, tmp_path / name)
        assert torch.random.get_rng_state().equal(state)  # ... nor be changed by a build
        files = sorted(p.name for p in built[name].glob("*.safetensors"))
        assert files == sorted(p.name for p in again.glob("*.safetensors")) and files
        for fname in files:
            a, b = load_file(built[name] / fname), load_file(again / fname)
            assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), (name, fname)
        for fname in ("tokenizer.json", "tokenizer_config.json", "config.json"):
            assert (built[name] / fname).read_text() == (again / fname).read_text(), (name, fname)


def test_sharded_layout(built: dict[str, Path]):
    from safetensors.torch import load_file

    path = built["tiny-llama-sharded"]
    index = json.loads((path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2
    assert shards == sorted(p.name for p in path.glob("*.safetensors"))
    assert not (path / "model.safetensors").exists()
    merged = {}
    for shard in shards:
        part = load_file(path / shard)
        assert all(index["weight_map"][k] == shard for k in part)
        merged.update(part)
    single = load_file(built["tiny-llama"] / "model.safetensors")  # same recipe and seed, other layout
    assert merged.keys() == single.keys() and all(merged[k].equal(single[k]) for k in single)


# --- ensure_builtin: caching and atomicity --------------------------------------------


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_ensure_is_idempotent(built: dict[str, Path], cache: Path, monkeypatch: pytest.MonkeyPatch):
    path = built["tiny-bert"]
    before = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}

    def must_not_build(*args, **kwargs):
        raise AssertionError("rebuilt an already built checkpoint")

    monkeypatch.setattr(B, "build_checkpoint", must_not_build)
    assert B.ensure_builtin("tiny-bert", cache) == path
    assert {p.name: p.stat().st_mtime_ns for p in path.iterdir()} == before
    assert _leftovers(path.parent) == []
    assert not any(p.name.startswith(".") for p in path.iterdir())
    umask = os.umask(0o22)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0700
    assert os.environ["LOADBENCH_CACHE_DIR"] and not any(Path(os.environ["LOADBENCH_CACHE_DIR"]).iterdir())


def _fake_build(tag: str):
    def build(name: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "who").write_text(tag)
        (dest / B._MARKER).write_text("{}")
        return dest

    return build


def test_ensure_lost_race_keeps_winner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = B.builtin_dir("tiny-gpt2", tmp_path)

    def racing_build(name: str, dest: Path) -> Path:
        winner = _fake_build("winner")(name, tmp_path / "elsewhere")
        winner.rename(target)  # another process finishes first, while we are still building
        return _fake_build("loser")(name, dest)

    monkeypatch.setattr(B, "build_checkpoint", racing_build)
    assert B.ensure_builtin("tiny-gpt2", tmp_path) == target
    assert (target / "who").read_text() == "winner"
    assert _leftovers(target.parent) == []


def test_ensure_replaces_incomplete_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = B.builtin_dir("tiny-t5", tmp_path)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # half-copied, no marker
    assert not B.is_built("tiny-t5", tmp_path)
    monkeypatch.setattr(B, "build_checkpoint", _fake_build("fresh"))
    assert B.ensure_builtin("tiny-t5", tmp_path) == target
    assert (target / "who").read_text() == "fresh" and not (target / "config.json").exists()
    assert B.is_built("tiny-t5", tmp_path) and _leftovers(target.parent) == []


def test_ensure_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def broken(name: str, dest: Path) -> Path:
        (dest / "partial").write_text("x")
        raise RuntimeError("boom")

    monkeypatch.setattr(B, "build_checkpoint", broken)
    with pytest.raises(RuntimeError, match="boom"):
        B.ensure_builtin("tiny-bart", tmp_path)
    parent = B.builtin_dir("tiny-bart", tmp_path).parent
    assert list(parent.iterdir()) == [] and not B.is_built("tiny-bart", tmp_path)


def test_tokenizer_class_is_one_every_supported_transformers_knows(built: dict[str, Path]) -> None:
    # transformers 5 writes TokenizersBackend, which 4.x cannot load.
    for name, path in built.items():
        config = json.loads((path / "tokenizer_config.json").read_text())
        assert config["tokenizer_class"] == "PreTrainedTokenizerFast", name


@pytest.mark.parametrize(("installed", "keyword"), [("4.46.3", "torch_dtype"), ("4.55.4", "torch_dtype"),
                                                    ("4.56.0", "dtype"), ("5.24.0", "dtype"), ("5.0.0rc1", "dtype")])
def test_the_dtype_keyword_follows_the_installed_transformers(monkeypatch: pytest.MonkeyPatch, installed: str,
                                                              keyword: str) -> None:
    import importlib.metadata

    from loadbench.loaders.common import dtype_keyword

    monkeypatch.setattr(importlib.metadata, "version", lambda name: installed)
    assert dtype_keyword() == keyword
