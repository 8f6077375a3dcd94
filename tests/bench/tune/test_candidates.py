"""The settings a tune tries: the default first, one change each, the fast loaders; n/a ones say why."""

from __future__ import annotations

import pytest

from loadbench.bench.tune.candidates import DEFAULT_SETTING, base_path, candidates
from loadbench.loaders import SHIPPED, inspect_checkpoint
from loadbench.loaders.options import LoadOptions


def test_every_candidate_changes_one_thing_from_the_default(builtin) -> None:
    info = inspect_checkpoint(builtin("tiny-llama"))
    found = candidates(info, "text-generation", "cpu", cores=2)
    names = [s.name for s in found]
    assert names[0] == DEFAULT_SETTING and found[0].options == LoadOptions() and found[0].path == "task"
    assert len(set(names)) == len(names)
    for setting in found[1:]:
        if setting.path in SHIPPED:  # a fast loader is the change, with its own threads or not
            assert setting.options in (LoadOptions(), LoadOptions(loader_threads=setting.options.loader_threads))
            assert setting.name == setting.path or setting.name == f"{setting.path}:{setting.options.text}"
        else:
            assert setting.path == "task" and len(setting.suite_entry["options"]) >= 1
    assert set(SHIPPED) <= set(names)
    assert {"safetensors_read=eager", "torch_threads=1"} <= set(names)
    assert "torch_threads=2" not in names  # two cores: torch's own default, not a change


def test_a_loader_that_is_not_installed_is_listed_with_its_install_line(builtin,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from loadbench.loaders.paths import user_path

    shipped = dict(SHIPPED)
    name = next(iter(shipped))
    monkeypatch.setitem(user_path.SHIPPED, name, type(shipped[name])(
        name, "lb_no_such_module:load", "lb_no_such_module", f"loadbench[{name}]", reads_safetensors=True))
    info = inspect_checkpoint(builtin("tiny-llama"))
    setting = next(s for s in candidates(info, "text-generation", "cpu", cores=2) if s.name == name)
    assert setting.not_applicable is not None and f"loadbench[{name}]" in setting.not_applicable


def test_a_bare_model_is_tuned_on_the_automodel_path() -> None:
    assert base_path("feature-extraction") == "base" and base_path("text-generation") == "task"
