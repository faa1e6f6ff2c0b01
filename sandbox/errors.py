"""Errors raised by :mod:`sandbox`.

SandboxError                root
├── FrameError              a framed message is malformed or over its size cap
├── LimitExceeded           the job hit a limit (memory, CPU time, wall clock, output); .limit
└── WorkerFailed            the worker reported an error (bad input, unreadable dataset, …)
"""


class SandboxError(Exception):
    """Root of every error raised by the sandbox package."""


class FrameError(SandboxError):
    pass


class LimitExceeded(SandboxError):
    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"sandbox: {message}")
        self.limit = limit


class WorkerFailed(SandboxError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
