"""Fixtures shared by the CLI tests."""
import os

import pytest


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment for memwall runs: one machine profile per module
    (measured by the first run, then cached), or the one CI points at."""
    cache = os.environ.get("MEMWALL_TEST_CACHE_DIR") or str(tmp_path_factory.mktemp("cache"))
    e = dict(os.environ)
    e["MEMWALL_CACHE_DIR"] = cache
    return e
