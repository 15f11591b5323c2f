"""What a measurement ran on: CPU model and cores, memory, GPU, library versions, date."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from importlib import metadata


def describe_machine() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _memory_gb(), "gpu": gpu,
            "python": platform.python_version(), "torch": torch.__version__, "sam2": _version("sam2"),
            "segment-with-sam2": _version("segment-with-sam2"),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def one_line(machine: dict) -> str:
    gpu = f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU"
    return (f"{machine['cpu']} ({machine['cores']} cores, {machine['memory_gb']} GB){gpu}; torch {machine['torch']}, "
            f"sam2 {machine['sam2']}; {machine['date']}")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb():
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30)
    except (ValueError, OSError, AttributeError):
        return None


def _version(name: str):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
