"""Collects the hostile suite's outcomes and prints them as one table at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest

TABLE: dict[str, dict[str, tuple[bool, str]]] = {}  # case -> backend -> (contained, detail)


def record(case: str, backend: str, contained: bool, detail: str) -> None:
    TABLE.setdefault(case, {})[backend] = (contained, detail)


def render() -> list[str]:
    backends = sorted({b for row in TABLE.values() for b in row})
    lines = [f"{'case':24}" + "".join(f"{b:>12}" for b in backends)]
    for case, row in TABLE.items():
        cells = ["-" if b not in row else "contained" if row[b][0] else "ESCAPED" for b in backends]
        lines.append(f"{case:24}" + "".join(f"{c:>12}" for c in cells))
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TABLE:
        terminalreporter.section("hostile suite: containment per backend")
        for line in render():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _table_file(tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield
    if TABLE:
        (tmp_path_factory.getbasetemp() / "hostile-table.txt").write_text("\n".join(render()) + "\n")
