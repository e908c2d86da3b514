"""Ray tests run only inside a private network namespace (tests/run.sh makes one): there every
Ray address is 127.0.0.1. Outside one, Ray would bind to the machine's interfaces."""

from __future__ import annotations

import pytest


def private_netns() -> bool:
    try:  # /proc/net/dev lists the interfaces of this process's own network namespace
        with open("/proc/net/dev") as f:
            names = [line.split(":", 1)[0].strip() for line in f.readlines()[2:]]
    except OSError:
        return False
    return names == ["lo"]


requires_netns = pytest.mark.skipif(
    not private_netns(), reason="Ray tests need a private network namespace: run `bash tests/run.sh`"
)
