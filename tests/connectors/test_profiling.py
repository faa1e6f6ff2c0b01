from pathlib import Path

import pytest

from connectors.profiling import ProfileError, profile_csv


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_profile(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "phone,id_no,amount,joined,vip,name\n"
        "13800000001,410105199001011234,12.5,2024-01-02,true,张三\n"
        "13800000002,41010519900101123X,7,2024-02-03,false,\n"
        "13800000002,410105199001011235,3,2024-03-04,true,李四\n",
    )
    profile = profile_csv(path, "phone")
    assert profile["row_count"] == 3
    assert profile["key_distinct"] == 2 and profile["key_uniqueness"] == round(2 / 3, 4)
    columns = {c["name"]: c for c in profile["columns"]}
    assert columns["phone"]["tags"] == ["phone"] and columns["phone"]["type"] == "string"
    assert columns["id_no"]["tags"] == ["id_card"] and columns["id_no"]["type"] == "string"
    assert columns["amount"]["type"] == "number"
    assert columns["joined"]["type"] == "date"
    assert columns["vip"]["type"] == "boolean"
    assert columns["name"]["type"] == "string" and columns["name"]["completeness"] == round(2 / 3, 4)


def test_identifiers_are_strings_however_numeric(tmp_path: Path) -> None:
    text = "customer,branch,phone_alt,visits\n1001,0371,13800000001,3\n1002,0379,13800000002,12\n"
    path = write(tmp_path, text)
    columns = {c["name"]: c for c in profile_csv(path, "customer", {"phone_alt": ["phone"]})["columns"]}
    # the key, a leading zero (an area code), a semantic tag: strings; a count stays a number
    assert [columns[n]["type"] for n in ("customer", "branch", "phone_alt", "visits")] == [
        "string", "string", "string", "integer",
    ]  # fmt: skip


def test_credit_codes_need_a_valid_check_character(tmp_path: Path) -> None:
    profile = profile_csv(write(tmp_path, "code\n914403001922038216\n91330100799655058B\n"), "code")
    assert profile["columns"][0]["tags"] == ["credit_code"]
    typo = profile_csv(write(tmp_path, "code\n914403001922038217\n91330100799655058C\n"), "code")
    assert typo["columns"][0]["tags"] == []


def test_declared_tags_are_added(tmp_path: Path) -> None:
    profile = profile_csv(write(tmp_path, "k,code\n1,x\n"), "k", {"code": ["credit_code"]})
    assert profile["columns"][1]["tags"] == ["credit_code"]


@pytest.mark.parametrize(
    ("text", "key", "tags", "message"),
    [
        ("", "k", None, "empty file"),
        ("k\n", "k", None, "has a header but no data rows"),
        ("a,a\n1,2\n", "a", None, "header names must be unique"),
        ("k,v\n1\n", "k", None, "line 2 has 1 fields, the header has 2"),
        ("k\n1\n", "phone", None, "no column 'phone'"),
        ("k\n1\n", "k", {"nope": ["phone"]}, r"--tag names columns \['nope'\]"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, key: str, tags: dict | None, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        profile_csv(write(tmp_path, text), key, tags)
