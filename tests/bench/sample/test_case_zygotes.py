"""A case's architecture imported once, in a zygote of its own; its time on the sample that asks for it."""

from __future__ import annotations

from loadbench.bench.sample.case_zygotes import IMPORTED_ONCE
from loadbench.bench.sample.protocol import SampleRequest
from loadbench.bench.sample.spawn import Zygote
from loadbench.bench.sample.worker import import_key


def _request(directory, path: str, record_import: bool = False, cache: str = "warm",
             warmup: bool = False) -> SampleRequest:
    return SampleRequest(
        checkpoint_dir=str(directory), path=path, task="text-generation", device="cpu", dtype="auto",
        prompt="the river", batch_size=1, new_tokens=4, forward_iters=1, check_equivalence=False,
        record_import=record_import, cache=cache, warmup=warmup,
    )


def test_warm_and_cold_share_an_import_and_paths_do_not(tmp_path) -> None:
    assert import_key(_request(tmp_path, "base")) == import_key(_request(tmp_path, "base", cache="cold"))
    assert import_key(_request(tmp_path, "base")) != import_key(_request(tmp_path, "task"))
    assert import_key(_request(tmp_path, "base")) != import_key(_request(tmp_path / "other", "base"))


def test_a_case_is_imported_once_and_its_time_recorded_on_the_sample_that_asks(zygote: Zygote, builtin) -> None:
    checkpoint = builtin("tiny-llama")
    recorded = zygote.run(_request(checkpoint, "custom", record_import=True), timeout_s=120)
    other = zygote.run(_request(checkpoint, "custom"), timeout_s=120)
    assert recorded.failures == other.failures == []
    [import_s] = [m["value"] for m in recorded.metrics if m["metric"] == "import_s"]
    assert 0 < import_s < 60
    # Timed in the case's zygote, a fresh fork of the first, before Llama's modeling code was there.
    assert recorded.info["arch_module_preloaded"] is False
    # What the import wrote in the case's zygote; each worker copied it in before its timers.
    assert recorded.info["import_copied_bytes"] == recorded.info["import_written_bytes"] > 0
    assert "import_s" not in other.values()
    assert {"metric": "import_s", "reason": IMPORTED_ONCE} in other.not_applicable


def test_without_case_zygotes_each_worker_imports_and_times_it(builtin) -> None:
    each = Zygote()
    each.case_zygotes = False
    replies = [each.run(_request(builtin("tiny-llama"), "task"), timeout_s=120) for _ in range(2)]
    for reply in replies:
        assert reply.failures == []
        assert reply.values()["import_s"] > 0
        assert reply.info["arch_module_preloaded"] is False  # the one before did not leave it behind
    assert replies[0].info["modules_before_import"] == replies[1].info["modules_before_import"]


def test_after_a_warmup_workers_copy_in_only_the_pages_a_sample_writes(zygote: Zygote, builtin, tmp_path) -> None:
    import shutil

    checkpoint = shutil.copytree(builtin("tiny-llama"), tmp_path / "llama")  # a case no zygote has seen
    warmup = zygote.run(_request(checkpoint, "base", warmup=True), timeout_s=120)
    assert warmup.failures == []
    assert "import_copied_bytes" not in warmup.info  # it copied nothing: it learned what it wrote
    measured = zygote.run(_request(checkpoint, "base", record_import=True), timeout_s=120)
    assert measured.failures == []
    assert 0 < measured.info["import_copied_bytes"] < measured.info["import_written_bytes"]
