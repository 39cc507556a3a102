"""Units as people write them in a profile: CPUs (`0.5`, `500m`), sizes (`512Mi`, `1Gi`, `500M`) and
durations in whole seconds (`30`, `30s`, `2m`, `1h`).

Each parser raises `ValueError` with a message that fits after a located field name
(`services.web.resources.limits.memory: must be a memory size like 512Mi or 1Gi, got 'lots'`): the
caller knows where the value was and adds it.
"""

from __future__ import annotations

import re
from typing import Any

DURATION_SECONDS = re.compile(r"^(\d+)(s|m|h)?$")  # whole seconds: 30, 30s, 2m, 1h
_BYTES_SUFFIX = {
    "": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


def parse_cpus(value: Any) -> float:
    """`0.5`, `"0.5"`, `"500m"` → cores."""
    if isinstance(value, bool):
        raise ValueError("must be a number of CPUs like 0.5 or 500m")
    if isinstance(value, (int, float)):
        cpus = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\d+m", value.strip()):
        cpus = int(value.strip()[:-1]) / 1000
    else:
        try:
            cpus = float(str(value))
        except ValueError:
            raise ValueError(f"must be a number of CPUs like 0.5 or 500m, got {value!r}") from None
    if cpus <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return cpus


def parse_bytes(value: Any) -> int:
    """Kubernetes quantities: `512Mi`, `1Gi`, `500M` (decimal), or a plain byte count."""
    if isinstance(value, bool):
        raise ValueError("must be a memory size like 512Mi or 1Gi")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"must be > 0, got {value}")
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*", str(value))
    if not m:
        raise ValueError(f"must be a memory size like 512Mi or 1Gi, got {value!r}")
    amount = float(m.group(1)) * _BYTES_SUFFIX[m.group(2) or ""]
    if amount <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return int(amount)


def parse_seconds(value: Any) -> int:
    """`30`, `"30s"`, `"2m"`, `"1h"` → whole seconds (`0` is zero). Only whole units: a probe or a
    pause is set in seconds, and `1.5m` would be a guess."""
    match = (DURATION_SECONDS.match(str(value)) if isinstance(value, (int, str)) and not isinstance(value, bool)
             else None)
    if match is None:
        raise ValueError(f"must be a duration like 30s, 2m or 1h, got {value!r}")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
