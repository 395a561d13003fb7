"""Give freed tensors back to the operating system (`--low-memory`), set once per command.

glibc serves a block above its mmap threshold with its own mapping and unmaps it on free. Its
default threshold (128 kB) rises to the size of each such block freed, up to 32 MB; after a few
steps the activations of a training step are served from the heap instead, and freed heap memory
stays resident. SFT on SmolLM2 at 4 x 2k tokens reached 6.5 GB that way where its live tensors
need about 3: with the threshold fixed at 1 MB the same step peaks at 3.11 GB, 6.5 % slower
(`python benchmarks/sft_bench.py --rows mem-labelled+ckpt,mem-labelled+ckpt+mmap`,
docs/PERFORMANCE.md). Setting the threshold with `mallopt` also stops it from moving.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import warnings

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
LOW_MEMORY_MMAP_THRESHOLD = 1 << 20  # 1 MB: the threshold measured in the benchmark


class LowMemoryUnavailable(UserWarning):
    pass


def release_freed_memory() -> bool:
    """Fix glibc's mmap threshold at 1 MB for this process. Returns False, with a
    warning, where the C library is not glibc (macOS, musl): there the flag changes nothing."""
    libc_name = ctypes.util.find_library("c")
    try:
        done = ctypes.CDLL(libc_name).mallopt(M_MMAP_THRESHOLD, LOW_MEMORY_MMAP_THRESHOLD) == 1
    except (OSError, AttributeError, TypeError):
        done = False
    if not done:
        warnings.warn(
            f"--low-memory needs glibc's mallopt, which this C library ({libc_name}) lacks; memory use is unchanged",
            LowMemoryUnavailable,
            stacklevel=2,
        )
    return done
