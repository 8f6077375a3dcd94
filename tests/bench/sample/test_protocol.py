"""The parent trusts no reply it has not checked."""

from __future__ import annotations

import pytest

from loadbench.bench.sample.protocol import BAD_REPLY, ProtocolError, SampleReply, SampleRequest, WorkerFailed, encode

GOOD = {"metrics": [{"metric": "load_s", "value": 0.1}], "failures": [], "not_applicable": [], "info": {}}


def test_round_trip() -> None:
    reply = SampleReply.from_bytes(encode(GOOD))
    assert reply.to_dict() == GOOD
    assert reply.values() == {"load_s": 0.1}


def test_a_reply_built_by_the_worker_round_trips() -> None:
    reply = SampleReply(info={"pid": 7})
    reply.ok("load_s", 0.5)
    reply.fail("ttft_s", RuntimeError("out of memory\ntraceback follows"))
    reply.na("gpu_peak_used_bytes", "device is cpu")
    again = SampleReply.from_bytes(reply.to_bytes())
    assert again == reply
    assert again.failures == [{"metric": "ttft_s", "error_type": "RuntimeError", "error": "out of memory"}]


def test_a_request_round_trips_and_refuses_unknown_fields() -> None:
    request = SampleRequest("/ckpt", "base", "text-generation", "cpu", "auto", "hi", 1, 4, 2, True,
                            prompt_tokens=8, trust_remote_code=True, builtin="tiny-llama")
    assert SampleRequest.from_dict(request.to_dict()) == request
    with pytest.raises(ProtocolError, match="delay_s"):
        SampleRequest.from_dict({**request.to_dict(), "delay_s": 1.0})


def test_a_malformed_reply_is_a_worker_failure_of_its_own_type() -> None:
    with pytest.raises(WorkerFailed) as caught:
        SampleReply.from_bytes(b"{}")
    assert caught.value.error_type == BAD_REPLY


@pytest.mark.parametrize("data", [
    b"not json",
    b"[]",
    encode({**GOOD, "metrics": None}),
    encode({**GOOD, "metrics": [{"metric": "load_s", "value": "fast"}]}),
    encode({**GOOD, "failures": [{"metric": "load_s", "error_type": "X"}]}),
    encode({**GOOD, "not_applicable": [{"metric": "gpu_peak_used_bytes"}]}),
    encode({k: v for k, v in GOOD.items() if k != "info"}),
    encode({**GOOD, "metrics": [{"metric": "load_s", "value": True}]}),
    b'{"metrics": [{"metric": "load_s", "value": NaN}], "failures": [], "not_applicable": [], "info": {}}',
    b"\xff\xfe",
])
def test_malformed_replies_are_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        SampleReply.from_bytes(data)


def test_nan_cannot_be_sent() -> None:
    with pytest.raises(ValueError):
        encode({**GOOD, "metrics": [{"metric": "load_s", "value": float("nan")}]})


def test_a_partial_reply_is_told_apart_from_the_final_one() -> None:
    from loadbench.bench.sample.protocol import decode_partial, encode_partial

    reply = SampleReply()
    reply.ok("load_s", 0.5)
    assert decode_partial(encode_partial(reply, "decode_tokens_per_s")) == (reply, "decode_tokens_per_s")
    assert decode_partial(reply.to_bytes()) is None
    with pytest.raises(ProtocolError):
        decode_partial(b'{"loaded_so_far": {"metrics": []}, "next": "decode_tokens_per_s"}')
