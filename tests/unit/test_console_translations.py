"""Every message the console shows has its Simplified Chinese translation, and the compiled
catalogue the server loads says the same as the one people edit."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "server" / "translations" / "zh_Hans" / "LC_MESSAGES"
METHODS = [("server/console/**.py", "python"), ("server/templates/console/**.html", "jinja2")]


def _extracted() -> set[str]:
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "N_": None}
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT, METHODS, keywords=keywords
        )
    }


def test_every_console_message_is_translated():
    with (CATALOGUE / "messages.po").open("rb") as po:
        translated = {m.id: m.string for m in read_po(po) if m.id}
    extracted = _extracted()
    assert len(extracted) > 100  # the extraction found the templates
    untranslated = sorted(m for m in extracted if not translated.get(m))
    assert untranslated == []


def test_the_catalogue_holds_no_message_the_console_no_longer_shows():
    # A stale message is a translation nobody reviews; `pybabel update` keeps it as obsolete.
    with (CATALOGUE / "messages.po").open("rb") as po:
        catalogue = read_po(po)
    extracted = _extracted()  # once: each extraction walks the whole repository
    stale = sorted(m.id for m in catalogue if m.id and m.id not in extracted)
    assert stale == []
    assert list(catalogue.obsolete) == []


def test_the_compiled_catalogue_matches_the_source():
    with (CATALOGUE / "messages.po").open("rb") as po, (CATALOGUE / "messages.mo").open("rb") as mo:
        source = {m.id: m.string for m in read_po(po) if m.id}
        compiled = {m.id: m.string for m in read_mo(mo) if m.id}
    assert compiled == source


def test_english_gives_every_code_word_a_reading():
    from server.console.vocabulary import WORDS

    english = ROOT / "server" / "translations" / "en" / "LC_MESSAGES"
    with (english / "messages.po").open("rb") as po, (english / "messages.mo").open("rb") as mo:
        source = {m.id: m.string for m in read_po(po) if m.id}
        compiled = {m.id: m.string for m in read_mo(mo) if m.id}
    assert compiled == source
    assert set(source) == set(WORDS)
    assert all("_" not in reading for reading in source.values())
