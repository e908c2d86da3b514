"""Ray tests run only inside a private network namespace (tests/run.sh makes one): there every
Ray address is 127.0.0.1. Outside one, Ray would bind to the machine's interfaces."""

from __future__ import annotations

import os

import pytest


def private_netns() -> bool:
    try:
        return sorted(os.listdir("/sys/class/net")) == ["lo"]
    except OSError:
        return False


requires_netns = pytest.mark.skipif(
    not private_netns(), reason="Ray tests need a private network namespace: run `bash tests/run.sh`"
)
