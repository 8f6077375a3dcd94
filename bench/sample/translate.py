"""One sample, end to end: its request built from a case, its records built from the reply.

The runner, the pytest plugin and the compare validation all measure samples; each asks
here, so a new field of the request or of a record is added in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadbench.bench.plan import Case
from loadbench.bench.sample.protocol import SampleReply, SampleRequest, WorkerFailed
from loadbench.bench.suite import Suite
from loadbench.results import Sample

__all__ = ["Round", "failure_records", "records_for", "request_for"]


@dataclass(frozen=True)
class Round:
    """One pass over every case: warmup passes come first and are recorded as such."""

    repeat: int
    warmup: bool

    @property
    def first_measured(self) -> bool:
        """The round that checks equivalence and records what does not apply, once per case."""
        return self == Round(0, False)


def request_for(case: Case, suite: Suite, *, check_equivalence: bool,
                record_import: bool = False, warmup: bool = False) -> SampleRequest:
    """The sample's request; the executor fills in the threads and CPUs of the node that runs it.

    ``record_import``: this sample carries the case's import time when the architecture is
    imported once for all of the case's samples (a run's first measured sample);
    ``warmup``: its numbers are not kept.
    """
    return SampleRequest(
        checkpoint_dir=case.checkpoint_dir, path=case.path, task=case.task, device=case.device,
        dtype=case.dtype, prompt=suite.prompt, batch_size=suite.batch_size,
        new_tokens=suite.new_tokens, forward_iters=suite.forward_iters,
        check_equivalence=check_equivalence, cache=case.cache,
        prompt_tokens=suite.prompt_tokens, builtin=case.builtin,
        trust_remote_code=suite.trust_remote_code, allow_bin_weights=suite.allow_bin_weights,
        options=case.options, record_import=record_import, warmup=warmup,
    )


def records_for(case: Case, run_id: str, round_: Round, reply: SampleReply,
                node: str | None = None, block: int | None = None) -> list[Sample]:
    """The records of one worker reply; not-applicable metrics are kept once per case."""
    key, repeat = case.key(), round_.repeat
    extra = {k: reply.info[k] for k in ("attn_implementation", "resident_dtype") if k in reply.info}
    records = [Sample.ok(key, run_id, repeat, m["metric"], float(m["value"]),
                         warmup=round_.warmup, node=node, block=block, **extra)
               for m in reply.metrics]
    records += [Sample.failed(key, run_id, repeat, f["metric"], f["error_type"], f["error"],
                              warmup=round_.warmup, node=node, block=block, **extra)
                for f in reply.failures]
    if round_.first_measured:
        records += [Sample.not_applicable(key, run_id, repeat, n["metric"], n["reason"], node=node)
                    for n in reply.not_applicable]
    elif not records:
        # The worker found the whole case not applicable in its environment: the sample is
        # still on record, or a resume would take it again.
        records = [Sample.not_applicable(key, run_id, repeat, n["metric"], n["reason"], warmup=round_.warmup,
                                         node=node, block=block) for n in reply.not_applicable]
    return records


def failure_records(case: Case, run_id: str, round_: Round, failure: WorkerFailed,
                    node: str | None = None, block: int | None = None) -> list[Sample]:
    """The records of a sample that ended without a usable reply (crash, timeout, bad reply, lost node).

    A worker that ended in its workload had reported its load: those records are kept,
    and the failure is recorded against the workload's metric, not the load's.
    """
    partial = failure.partial or SampleReply()
    reply = SampleReply(list(partial.metrics), [*partial.failures, {"metric": failure.metric, "error_type":
                        failure.error_type, "error": str(failure)}], list(partial.not_applicable), partial.info)
    return records_for(case, run_id, round_, reply, node, block)
