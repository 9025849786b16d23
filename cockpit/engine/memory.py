"""Memory probe: CUDA allocator figures, NVML utilisation when available, process RSS.

Like nvitop's API layer, it answers "not available" instead of raising when there is no
GPU or no NVML, so every caller can show what exists.
"""

from __future__ import annotations

import os
import resource
from functools import lru_cache

import torch

_MB = 1024 * 1024


def rss_mb() -> float:
    """Resident set size of this process, in MiB."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / _MB
    except (OSError, ValueError, IndexError):
        # ru_maxrss is KiB on Linux: a peak, the best we have off Linux.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@lru_cache(maxsize=None)
def _nvml_handle(index: int):
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # noqa: BLE001 - NVML is optional; any failure means "n/a"
        return None


def gpu_utilization(index: int) -> float | None:
    """GPU utilisation in percent through NVML, or None when NVML is not available."""
    handle = _nvml_handle(index)
    if handle is None:
        return None
    try:
        import pynvml  # type: ignore[import-not-found]

        return float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:  # noqa: BLE001
        return None


@lru_cache(maxsize=None)
def _total_mb(index: int) -> float:
    return torch.cuda.get_device_properties(index).total_memory / _MB


def sample(device: torch.device) -> dict[str, float]:
    """One memory reading; CUDA keys only on CUDA devices."""
    reading = {"rss_mb": round(rss_mb(), 1)}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        reading.update(
            allocated_mb=round(torch.cuda.memory_allocated(index) / _MB, 1),
            reserved_mb=round(torch.cuda.memory_reserved(index) / _MB, 1),
            peak_mb=round(torch.cuda.max_memory_allocated(index) / _MB, 1),
            total_mb=round(_total_mb(index), 1),
        )
        utilization = gpu_utilization(index)
        if utilization is not None:
            reading["utilization"] = utilization
    return reading
