"""A one-node local testbed (a real master and agent on loopback) that the client's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rpiaas.testbed.local import LocalTestbed, start_local_testbed


@pytest.fixture(scope="package")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    """Started once for the package's tests: each of their runs has its own id on its master."""
    with start_local_testbed(tmp_path_factory.mktemp("testbed"), 1, poll_interval_s=0.25) as tb:
        yield tb
