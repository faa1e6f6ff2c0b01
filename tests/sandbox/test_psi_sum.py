"""psi.sum's protocol (sandbox.ops.psi_sum, psi_sum_jobs) against a plain-Python reference:
exact sums and counts per category on tricky keys and values, and the refusals of bad columns,
forged messages and wrong parameters, with no cell's value in any message."""

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import tenseal as ts

from sandbox.errors import WorkerFailed
from sandbox.limits import Limits
from sandbox.ops import psi_sum, psi_sum_jobs, psi_x25519, sum_rows

LIMITS = Limits(workers=2)
STEPS = psi_sum_jobs.operations(lambda fraction: None)


def run(path: Path, ours: list[str], summed: str = "amount", by: str | None = None) -> dict[str, Any]:
    """The three steps as the connectors chain them; the result as the consumer sees it."""
    key = psi_x25519.new_key()
    request = psi_x25519.client_request(ours, key, False, 2)
    params = {"column": "phone", "sum": summed, "by": by, "consumer_set_size": len(ours)}
    found, blobs = STEPS["psi.sum.provider"]({"params": params, "dataset": str(path)}, [request], LIMITS)
    setup, response, public, secret, ciphertexts = blobs
    labels = len(found["labels"])
    client_params = {
        "key": key.hex(),
        "expected": len(ours),
        "provider_set_size": found["provider_set_size"],
        "categories": labels,
    }
    counted, sums = STEPS["psi.sum.client"](
        {"params": client_params}, [setup, response, public, ciphertexts], LIMITS
    )
    revealed, _ = STEPS["psi.sum.reveal"]({"params": {"categories": labels}}, [secret, *sums], LIMITS)
    return {
        "cardinality": counted["cardinality"],
        "by": {
            label: (count, sum_rows.unscaled(psi_sum.unmasked(masked, mask), found["places"]))
            for label, count, masked, mask in zip(
                found["labels"], revealed["counts"], revealed["masked"], counted["masks"], strict=True
            )
        },
    }


def reference(rows: list[tuple[str, str, str]], ours: list[str]) -> dict[str, tuple[int, Decimal]]:
    import unicodedata

    mine = {unicodedata.normalize("NFC", x.strip()) for x in ours}
    keys: dict[str, str] = {}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for phone, amount, city in rows:
        k = unicodedata.normalize("NFC", phone.strip())
        if not k:
            continue
        keys[k] = unicodedata.normalize("NFC", city.strip())
        totals[k] += Decimal(amount.strip() or "0")
    out: dict[str, tuple[int, Decimal]] = {}
    for k in keys.keys() & mine:
        count, total = out.get(keys[k], (0, Decimal(0)))
        out[keys[k]] = (count + 1, total + totals[k])
    return out


def write(path: Path, rows: list[tuple[str, str, str]], bom: bool = False, crlf: bool = False) -> Path:
    end = "\r\n" if crlf else "\n"
    text = end.join(["phone,amount,city", *(",".join(_quoted(c) for c in row) for row in rows)]) + end
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def _quoted(cell: str) -> str:
    return f'"{cell}"' if "," in cell or cell != cell.strip() else cell


TRICKY = [
    (" 13800000001 ", "10.5", "郑州"),
    ("13800000002", "-3", "洛阳"),
    ("13800000002", "4.25", "洛阳"),  # a repeated key stands for its total
    ("Zoe\u0301", "7", "a,b"),  # NFD: the same key as the consumer's NFC
    ("", "1000", "郑州"),  # no key: not a row of the run
    ("13800000004", "", "郑州"),  # an empty value adds nothing; the key counts
    ("13800000005", "2", "洛阳"),  # not the consumer's
]
OURS = ["13800000001", "13800000002", "Zoé", "13800000004", "13900000000"]


@pytest.mark.parametrize(("bom", "crlf"), [(False, False), (True, True)])
def test_sums_per_category_equal_the_reference_on_tricky_keys(tmp_path: Path, bom: bool, crlf: bool) -> None:
    path = write(tmp_path / "b.csv", TRICKY, bom, crlf)
    found = run(path, OURS, by="city")
    want = reference(TRICKY, OURS)
    assert found["cardinality"] == 4
    assert {label: (c, Decimal(s)) for label, (c, s) in found["by"].items() if c} == want
    assert found["by"]["洛阳"] == (1, "1.25")  # 13800000002: -3 + 4.25
    assert set(found["by"]) == {"a,b", "洛阳", "郑州"}


def test_a_sum_over_everything_and_a_large_set(tmp_path: Path) -> None:
    rows = [(f"139{i:08d}", str(i % 1000 - 300), "") for i in range(9000)]  # three ciphertexts
    path = write(tmp_path / "b.csv", rows)
    ours = [f"139{i:08d}" for i in range(4000, 12000)]
    found = run(path, ours)
    assert found["cardinality"] == 5000
    assert found["by"] == {"": (5000, str(sum(i % 1000 - 300 for i in range(4000, 9000))))}


def test_more_ciphertexts_than_a_message_has_blobs(tmp_path: Path) -> None:
    # 16 categories × 5 ciphertexts of 4 096 rows: 80 ciphertexts, packed as one blob (a message
    # holds at most 64), as 1 000 000 rows of one category take 245
    rows = [(f"139{i:08d}", "1", f"c{i % 16}") for i in range(4 * psi_sum.ROWS + 1)]
    path = write(tmp_path / "b.csv", rows)
    ours = [f"139{i:08d}" for i in range(0, len(rows), 2)]
    found = run(path, ours, by="city")
    assert found["cardinality"] == len(ours)
    assert found["by"] == {
        f"c{c}": (n, str(n))
        for c in range(16)
        for n in [sum(1 for i in range(0, len(rows), 2) if i % 16 == c)]
    }


def test_no_match_gives_zero(tmp_path: Path) -> None:
    path = write(tmp_path / "b.csv", [("1", "5", "x")])
    assert run(path, ["2"]) == {"cardinality": 0, "by": {"": (0, "0")}}


@pytest.mark.parametrize(
    ("rows", "summed", "by", "message"),
    [
        ([("1", "12abc", "x")], "amount", None, "column 'amount' holds values that are not numbers"),
        ([("1", "1e5", "x")], "amount", None, "column 'amount' holds values that are not numbers"),
        ([("1", "0.1234567", "x")], "amount", None, "column 'amount' has more than 6 decimal places"),
        ([("1", "1", "x"), ("1", "2", "y")], "amount", "city", "column 'city' gives a key more than one"),
        ([(str(i), "1", str(i)) for i in range(17)], "amount", "city", "column 'city' has 17 categories"),
        ([("1", "1", "x")], "balance", None, "no column 'balance'"),
        ([("1", str(2**49), "x"), ("2", str(2**49), "x")], "amount", None, "total magnitude reaches"),
    ],
)
def test_bad_columns_are_refused_without_a_value(
    tmp_path: Path, rows: list[tuple[str, str, str]], summed: str, by: str | None, message: str
) -> None:
    path = write(tmp_path / "b.csv", rows)
    with pytest.raises(WorkerFailed) as caught:
        run(path, ["1"], summed, by)
    assert message in str(caught.value)
    for _, amount, _ in rows:
        assert len(amount) < 3 or amount not in str(caught.value)  # a cell's value, never


def test_a_context_with_other_parameters_or_a_secret_key_is_refused() -> None:
    small = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=8192, plain_modulus=1032193)
    public = small.serialize(save_secret_key=False, save_galois_keys=False, save_relin_keys=False)
    with pytest.raises(WorkerFailed, match=r"plain modulus.*got \('BFV', 8192, 1032193, 218\)"):
        psi_sum.load_public(public)
    with pytest.raises(WorkerFailed, match="and a secret key"):
        psi_sum.load_public(psi_sum.new_keys().secret)
    with pytest.raises(WorkerFailed, match="cannot be read"):
        psi_sum.load_public(b"not a context")


def test_the_consumer_refuses_a_wrong_number_of_ciphertexts() -> None:
    keys = psi_sum.new_keys()
    ciphertexts = psi_sum.encrypt_columns(keys, [1, 2], [0, 0], 1)
    with pytest.raises(WorkerFailed, match="the provider sent 2 ciphertexts; 1 categories of 2 rows take 1"):
        psi_sum.masked_sums(keys.public, ciphertexts * 2, [True, False], 1)


def test_what_the_provider_decrypts_is_masked_slot_by_slot() -> None:
    """Each value slot and count slot the provider sees is uniform: only the totals mean anything."""
    keys = psi_sum.new_keys()
    ciphertexts = psi_sum.encrypt_columns(keys, [5] * 100, [0] * 100, 1)
    sums, masks = psi_sum.masked_sums(keys.public, ciphertexts, [True] * 40 + [False] * 60, 1)
    slots = ts.bfv_vector_from(ts.context_from(keys.secret), sums[0]).decrypt()
    assert sum(slots[psi_sum.ROWS :]) % psi_sum.PLAIN_MODULUS == 40
    assert psi_sum.unmasked(sum(slots[: psi_sum.ROWS]), masks[0]) == 200
    assert sum(1 for s in slots[:100] if s in (0, 5)) <= 1  # no slot shows a row's value
    assert sum(1 for s in slots[psi_sum.ROWS : psi_sum.ROWS + 100] if s in (0, 1)) <= 1


def test_the_plain_modulus_is_a_prime_for_batching() -> None:
    t = psi_sum.PLAIN_MODULUS
    assert t < 2**50 and t % (2 * psi_sum.DEGREE) == 1
    assert all(pow(a, t - 1, t) == 1 for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37))
