"""Sandbox limits: connector-wide defaults, tightened (never widened) per job."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048  # address space per process (RLIMIT_AS), MiB
    total_memory_mb: int = 4096  # memory of the whole job where a cgroup enforces it (docker), MiB
    cpu_seconds: int = 1800  # CPU time per process (RLIMIT_CPU), s
    wall_seconds: int = 1800  # wall clock for the whole job, then the process group is killed
    file_size_mb: int = 16  # largest file the worker may write (RLIMIT_FSIZE), MiB
    open_files: int = 256  # RLIMIT_NOFILE
    processes: int = 64  # processes of the job: RLIMIT_NPROC, and pids.max where a cgroup is made
    input_mb: int = 1024  # largest framed request accepted by the worker, MiB
    output_mb: int = 1024  # largest framed result accepted from the worker, MiB
    workers: int = 0  # parallel worker processes inside the sandbox; 0 = one per core

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Limits:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"unknown sandbox limits {unknown}; expected {sorted(names)}")
        values = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"sandbox limit {key}: expected a whole number ≥ 0, got {value!r}")
            values[key] = value
        return cls(**values)

    def tightened(self, overrides: dict[str, Any]) -> Limits:
        """These limits with ``overrides`` applied, each of which may only lower a value.

        A provider sets per-offer limits within the connector's, which act as the maximum."""
        wanted = Limits.from_json({**self.to_json(), **overrides})
        wider = [
            f"{name} {getattr(wanted, name)} > {getattr(self, name)}"
            for name in overrides
            if _size(name, getattr(wanted, name)) > _size(name, getattr(self, name))
        ]
        if wider:
            raise ValueError(
                f"per-offer sandbox limits may only lower the connector's; too high: {', '.join(wider)}"
            )
        return wanted


def _size(name: str, value: int) -> float:
    """A limit's value for comparison: ``workers = 0`` means one per core, i.e. the most."""
    return float("inf") if name == "workers" and value == 0 else value
