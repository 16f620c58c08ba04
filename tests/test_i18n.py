"""The gettext catalogues: complete, placeholder-safe, in step with the source, and chosen per user."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from tests.helpers import sign_in

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "tracker" / "translations"
LANGS = ("ja", "en")
# Same as `make extract-messages`: pybabel extract -F babel.cfg -k N_ -k _l
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "_l": None}
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?([diouxXeEfFgGcrsa%])")


def catalog(lang):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


def placeholders(text: str) -> set[str]:
    """Named placeholders with their conversion, e.g. {'%(n)d'}; a literal '%%' is not one."""
    return {f"%({name})" + conv if name else "%" + conv
            for name, conv in PLACEHOLDER.findall(text) if conv != "%"}


def extracted_msgids() -> dict[str, list[str]]:
    """Every msgid in the source, read the way babel.cfg tells pybabel to, with where it occurs."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, filename=str(ROOT / "babel.cfg"))
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_header(lang):
    cat = catalog(lang)
    assert str(cat.locale) == lang
    if lang == "ja":
        assert cat.plural_forms == "nplurals=1; plural=0;"


@pytest.mark.parametrize("lang", LANGS)
def test_every_entry_is_translated_and_not_fuzzy(lang):
    cat = catalog(lang)
    empty = [m.id for m in cat if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))]
    fuzzy = [m.id for m in cat if m.id and m.fuzzy]
    assert not empty, f"{lang}: untranslated: {empty}"
    assert not fuzzy, f"{lang}: fuzzy: {fuzzy}"
    assert not cat.fuzzy, f"{lang}: the catalogue header is marked fuzzy"


@pytest.mark.parametrize("lang", LANGS)
def test_placeholders_match(lang):
    bad = []
    for m in catalog(lang):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        wanted = set().union(*(placeholders(i) for i in ids))
        if m.python_format or wanted:
            for s in strings:
                if placeholders(s) != wanted:
                    bad.append((m.id, s))
    assert not bad, f"{lang}: placeholders differ between msgid and msgstr: {bad}"


def test_english_is_the_source_language():
    differ = [m.id for m in catalog("en") if m.id and m.string != m.id]
    assert not differ, f"en: msgstr differs from msgid: {differ}"


@pytest.mark.parametrize("lang", LANGS)
def test_every_source_string_is_in_the_catalogue(lang):
    source = extracted_msgids()
    assert "Sign in" in source and "Laptop" in source  # templates and N_() are both read
    known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(lang) if m.id}
    missing = sorted(set(source) - known)
    assert not missing, (
        f"{lang}: {len(missing)} source string(s) missing from the catalogue; run `make extract-messages` and "
        "translate them:\n" + "\n".join(f"  {m!r}  ({', '.join(source[m][:3])})" for m in missing))


@pytest.mark.parametrize(("accept", "shown", "not_shown"), [("ja", "ログイン", "Sign in"), ("en", "Sign in", "ログイン")])
def test_login_page_follows_the_browser_language(client, accept, shown, not_shown):
    page = client.get("/login", headers={"Accept-Language": accept})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"<h1>{shown}</h1>" in html
    assert not_shown not in html


@pytest.mark.parametrize(("setting", "accept", "shown", "not_shown"), [
    ("en", "ja", "Sign out", "ログアウト"),
    ("ja", "en", "ログアウト", "Sign out"),
])
def test_the_users_language_setting_beats_the_browser(client, make_user, setting, accept, shown, not_shown):
    user = make_user(language=setting)
    assert sign_in(client, user.email).status_code == 302
    page = client.get("/account", headers={"Accept-Language": accept})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert shown in html
    assert not_shown not in html


def test_translations_are_compiled_when_the_app_starts_without_make(tmp_path):
    """`flask --app app serve` or gunicorn straight from a checkout: no English page for a Japanese phone."""
    import shutil

    from tests.helpers import make_app
    from tracker import migrate

    folder = tmp_path / "translations"
    shutil.copytree(Path(__file__).resolve().parent.parent / "tracker" / "translations", folder)
    for mo in folder.glob("*/LC_MESSAGES/messages.mo"):
        mo.unlink()  # a fresh checkout: only the .po files
    db = f"sqlite:///{tmp_path / 'tracker.db'}"
    migrate.upgrade(db)
    app = make_app(db, tmp_path, BABEL_TRANSLATION_DIRECTORIES=str(folder))
    assert (folder / "ja" / "LC_MESSAGES" / "messages.mo").exists()
    page = app.test_client().get("/login", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "ログイン" in page
    app.extensions["tracker.engine"].dispose()


def test_speaking_writes_in_a_language_and_zone_then_gives_the_request_back(app, session, make_user, make_site):
    """An e-mail to someone at another office, written during a Singapore reader's request: in their language and
    zone inside, the reader's own again after, and the main office's zone for one this machine cannot read."""
    from datetime import UTC, datetime

    from flask_babel import gettext
    from flask_login import login_user

    from tracker.i18n import reader_zone, speaking, when

    reader = make_user(language="ja")
    reader.site = make_site("Singapore", timezone="Asia/Singapore")
    session.commit()
    moment = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with app.test_request_context("/"):
        login_user(reader)
        assert (when(moment), reader_zone()) == ("2026/06/01 20:00", "Asia/Singapore")
        with speaking("en", "Asia/Bangkok"):
            assert (when(moment), gettext("Due back")) == ("2026-06-01 19:00", "Due back")
        with speaking("en", "Atlantic/Atlantis"):  # a typo in a site's data: the main office's zone
            assert when(moment) == "2026-06-01 21:00"
        assert (when(moment), reader_zone(), gettext("Due back")) == ("2026/06/01 20:00", "Asia/Singapore", "返却期限")
