"""Which NVML device is torch's ``cuda:N``: matched by UUID, because the indices disagree.

NVML enumerates every GPU on the host while torch's indices follow CUDA_VISIBLE_DEVICES
(indices or UUIDs), so torch 0 may be NVML 3; the UUID is the one name both agree on.
A GPU memory reading taken from the wrong device would look plausible and be wrong, so
resolution fails loudly instead of falling back to an index.

Neither torch nor pynvml is imported at module level.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["NvmlDevice", "cuda_index", "resolve_nvml_device"]


@dataclass(frozen=True)
class NvmlDevice:
    """The NVML device behind one torch CUDA index (they differ under CUDA_VISIBLE_DEVICES)."""

    torch_index: int
    nvml_index: int | None  # None when found only by UUID lookup (e.g. a MIG instance)
    uuid: str
    handle: Any


def _bare_uuid(uuid: object) -> str:
    """UUID without its "GPU-"/"MIG-" prefix, lower case: torch gives it bare, NVML prefixed."""
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    text = text.strip().lower()
    for prefix in ("gpu-", "mig-"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def cuda_index(device: str) -> int:
    """Torch's index for ``device``; a bare "cuda" means the current device, without initialising CUDA."""
    import torch

    index = torch.device(device).index
    if index is not None:
        return index
    return torch.cuda.current_device() if torch.cuda.is_initialized() else 0


def resolve_nvml_device(torch_index: int) -> NvmlDevice:
    """The NVML device for torch's ``cuda:<torch_index>``, matched by UUID.

    Initialises NVML (reference-counted) and leaves it so. Raises LookupError, naming
    the UUIDs NVML does see, when none matches.
    """
    import pynvml
    import torch

    pynvml.nvmlInit()
    wanted = _bare_uuid(torch.cuda.get_device_properties(torch_index).uuid)
    seen: list[str] = []
    for nvml_index in range(int(pynvml.nvmlDeviceGetCount())):
        handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index)
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
        if _bare_uuid(uuid) == wanted:
            return NvmlDevice(torch_index=torch_index, nvml_index=nvml_index, uuid=uuid, handle=handle)
        seen.append(uuid)
    for prefix in ("GPU-", "MIG-"):  # MIG instances are not enumerated by index
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(prefix + wanted)
        except pynvml.NVMLError:
            continue
        return NvmlDevice(torch_index=torch_index, nvml_index=None, uuid=prefix + wanted, handle=handle)
    raise LookupError(
        f"no NVML device has the UUID of torch cuda:{torch_index} ({wanted}); "
        f"NVML sees {seen or 'no devices'} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
    )
