"""release_memory: glibc's free heap goes back to the OS after a job."""

from __future__ import annotations

import platform

import pytest

from lorchestra_dagster.engine.memory import release_memory

pytestmark = pytest.mark.unit


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_is_released() -> None:
    release_memory()
    blocks = [bytearray(2048) for _ in range(20_000)]  # ~40 MB of malloc'd (not pymalloc) blocks
    del blocks
    assert release_memory() is True
