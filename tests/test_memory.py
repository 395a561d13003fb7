"""`--low-memory`: freed blocks go back to the operating system instead of staying in glibc's heap."""

import platform
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from prismrl import cli

# Plain malloc/free through ctypes, no torch: the child measures glibc's behaviour alone, in its own
# process because the setting is process-wide.
CHILD = textwrap.dedent(
    """
    import ctypes, os, sys
    from prismrl.memory import release_freed_memory

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    if sys.argv[1] == "low":
        assert release_freed_memory()

    def resident():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def use_and_free(n=8 << 20):
        block = libc.malloc(n)
        libc.memset(block, 1, n)
        libc.free(block)

    use_and_free()  # glibc's default: this free raises the mmap threshold above 8 MB
    before = resident()
    use_and_free()  # ... so this block comes from the heap and stays resident after its free
    print((resident() - before) / 2**20)
    """
)


def _resident_growth_mb(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return float(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_low_memory_returns_a_freed_block_that_glibc_would_keep():
    assert _resident_growth_mb("default") >= 7  # the 8 MB block stayed resident
    assert _resident_growth_mb("low") < 1


@pytest.mark.parametrize("verb", ["sft", "run", "grid"])
def test_verbs_that_train_sft_take_low_memory(verb):
    result = CliRunner().invoke(cli.app, [verb, "--help"], env={"COLUMNS": "200"})
    assert "--low-memory" in result.output


def test_low_memory_is_set_before_the_command_runs_and_only_when_asked(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "release_freed_memory", lambda: calls.append(True))
    CliRunner().invoke(cli.app, ["sft"])  # fails for want of data, after the setup
    assert calls == []
    CliRunner().invoke(cli.app, ["sft", "--low-memory"])
    assert calls == [True]
