"""Reading columns of a CSV file for the homomorphic operations: NumPy's C reader gives the same
cells as the csv module, and the csv module's exact error where the C reader cannot read."""

from pathlib import Path

import numpy as np
import pytest

from sandbox.errors import WorkerFailed
from sandbox.ops import table

TRICKY = (
    "\ufeffid,note,x\r\n"
    '"C1,a",first,1.5\r\n'
    "  C2  ,has # inside,2.5\r\n"
    "\r\n"
    'C#3,"quoted ""text""",-3\r\n'
    "Cafe\u0301,accent,4e2\r\n"
)


def test_the_fast_key_reader_gives_the_csv_modules_cells(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(TRICKY.encode())
    fast = table.read_text(path, "id")
    assert list(fast) == ["C1,a", "C2", "C#3", "Caf\u00e9"]
    assert list(fast) == list(table.read_columns(path, {"id"})["id"])


def test_numbers_are_read_past_a_hash_in_a_text_cell(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(TRICKY.encode())
    numbers = table.read_numbers(path, {"x"})
    assert numbers is not None
    assert numbers["x"].tolist() == [1.5, 2.5, -3.0, 400.0]


def test_a_header_only_file_is_empty_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,x\n")
    assert table.read_text(path, "id").shape == (0,)
    numbers = table.read_numbers(path, {"x"})
    assert numbers is not None and numbers["x"].shape == (0,)


def test_a_row_the_c_reader_cannot_read_gets_the_csv_modules_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,y,id\n1,2,a\n3,4\n")
    with pytest.raises(WorkerFailed) as caught:
        table.read_text(path, "id")
    assert str(caught.value) == "t.csv: line 3 has 2 fields, the header has 3"
    assert caught.value.kind == "input"


def test_an_unknown_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,x\na,1\n")
    with pytest.raises(WorkerFailed, match=r"^t.csv: no column 'customer'; the header has \['id', 'x'\]$"):
        table.read_text(path, "customer")
    assert isinstance(table.read_text(path, "id"), np.ndarray)
