"""A zygote shared by the bench tests: starting one costs the torch + transformers imports."""

from __future__ import annotations

import pytest

from loadbench.bench.sample.spawn import Zygote


@pytest.fixture(scope="session")
def zygote() -> Zygote:
    z = Zygote()
    z.warm_up()
    return z
