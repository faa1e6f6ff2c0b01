"""Both web consoles — the space's (space/console) and the connectors' review console
(connectors/console) — in Simplified Chinese: every message their sources show is translated,
and the compiled catalog is the one the sources describe (``make i18n`` makes both)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("console", ["space/console", "connectors/console"])
def test_every_visible_string_is_in_the_chinese_catalog(console: str) -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    root = ROOT / console
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = {
        m[2] if isinstance(m[2], str) else m[2][0]
        for m in extract_from_dir(str(root), method_map, keywords={"_": None, "gettext": None, "_l": None})
    }
    with open(root / "translations/zh/LC_MESSAGES/messages.po", "rb") as handle:
        po = read_po(handle)
    with open(root / "translations/zh/LC_MESSAGES/messages.mo", "rb") as handle:
        mo = read_mo(handle)
    translated = {m.id: m.string for m in po if m.id and m.string}
    assert found and sorted(found - set(translated)) == []
    assert {m.id: m.string for m in mo if m.id} == translated
