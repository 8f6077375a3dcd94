"""The parent trusts no reply it has not checked."""

from __future__ import annotations

import pytest

from loadbench.bench.protocol import ProtocolError, decode_reply, encode

GOOD = {"metrics": [{"metric": "load_s", "value": 0.1}], "failures": [], "not_applicable": [], "info": {}}


def test_round_trip() -> None:
    assert decode_reply(encode(GOOD)) == GOOD


@pytest.mark.parametrize("data", [
    b"not json",
    b"[]",
    encode({**GOOD, "metrics": None}),
    encode({**GOOD, "metrics": [{"metric": "load_s", "value": "fast"}]}),
    encode({**GOOD, "failures": [{"metric": "load_s", "error_type": "X"}]}),
    encode({**GOOD, "not_applicable": [{"metric": "gpu_peak_used_bytes"}]}),
    encode({k: v for k, v in GOOD.items() if k != "info"}),
])
def test_malformed_replies_are_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_reply(data)


def test_nan_cannot_be_sent() -> None:
    with pytest.raises(ValueError):
        encode({**GOOD, "metrics": [{"metric": "load_s", "value": float("nan")}]})
