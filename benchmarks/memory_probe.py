"""Resident-memory probes shared by the benchmark scripts (Linux /proc)."""


def status_mb(field: str) -> float:
    """A /proc/self/status field (VmRSS, VmHWM, ...) in MB; NaN where it is missing."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Reset VmHWM (peak RSS) to the current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
