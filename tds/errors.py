"""Errors of the command line.

TdsError            root: the CLI prints its message and exits with its code
├── ApiError        a node answered with a problem (exit 1), or could not be reached
├── JobEnded        a job ended denied (exit 3), failed (exit 4) or withheld (exit 5)
└── Unhealthy       tds status found problems that need action (exit 6)
"""

from __future__ import annotations

from typing import Any, ClassVar


class TdsError(Exception):
    exit_code = 1


class ApiError(TdsError):
    def __init__(self, message: str, status: int = 0, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.problem = status, problem or {}


class JobEnded(TdsError):
    CODES: ClassVar[dict[str, int]] = {"denied": 3, "failed": 4, "withheld": 5}

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.exit_code = self.CODES.get(status, 1)


class Unhealthy(TdsError):
    exit_code = 6
