"""The command line through Flask's CLI runner: help, users create, items import, demo, bootstrap."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.helpers import count, reread, sign_in
from tracker.models import Event, Item, Kind, Role, User

pytestmark = pytest.mark.usefixtures("english")


@pytest.mark.parametrize("command", [
    [], ["users"], ["users", "create"], ["items"], ["items", "import"], ["demo"], ["db"], ["db", "upgrade"],
    ["bootstrap"], ["serve"],
], ids=lambda c: " ".join(c) or "flask")
def test_every_command_has_help(runner, command):
    result = runner.invoke(args=[*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert result.exception is None


def test_help_describes_the_commands(runner):
    top = runner.invoke(args=["--help"]).output
    for name in ("users", "items", "demo", "db", "bootstrap", "serve"):
        assert re.search(rf"^\s+{name}\s", top, re.M), f"{name} missing from flask --help"
    create = runner.invoke(args=["users", "create", "--help"]).output
    assert "--name" in create and "--role" in create and "standard input" in create
    imp = runner.invoke(args=["items", "import", "--help"]).output
    assert "--dry-run" in imp and "Shift_JIS" in imp


# --- users create -------------------------------------------------------------------------------------------------


def test_users_create_reads_password_from_stdin_and_sign_in_works(runner, client, session):
    result = runner.invoke(args=["users", "create", "Desk@Example.com", "--name", "受付 太郎", "--role", "security",
                                 "--language", "en"], input="a-long-secret-42\n")
    assert result.exit_code == 0, result.output
    assert "Created desk@example.com (security)." in result.output
    assert "a-long-secret-42" not in result.output  # a password given on stdin is never echoed
    reread(session)
    user = session.scalar(select(User).where(User.email == "desk@example.com"))
    assert user is not None and user.role == Role.security and user.name == "受付 太郎" and user.language == "en"
    assert user.must_change_password is False
    assert session.scalar(select(func.count(Event.id)).where(Event.action == "user_created",
                                                               Event.subject_user_id == user.id)) == 1

    resp = sign_in(client, "desk@example.com", "a-long-secret-42")
    assert resp.status_code == 302
    assert client.get("/").headers["Location"].endswith("/desk/")  # security lands on the desk
    assert client.get("/desk/").status_code == 200
    # a wrong password does not work
    assert sign_in(client.application.test_client(), "desk@example.com", "a-long-secret-43").status_code == 401


def test_users_create_handles_windows_line_ending(runner, client):
    result = runner.invoke(args=["users", "create", "crlf@example.com", "--name", "CRLF"],
                           input="windows-pass-1\r\n")
    assert result.exit_code == 0, result.output
    assert sign_in(client, "crlf@example.com", "windows-pass-1").status_code == 302


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["users", "create", "short@example.com", "--name", "S"], "short\n", "at least 10 characters"),
    (["users", "create", "not-an-email", "--name", "S"], "long-enough-pass\n", "valid e-mail"),
    (["users", "create", "x@example.com", "--name", "S", "--role", "root"], "long-enough-pass\n", "root"),
    (["users", "create", "x@example.com"], "long-enough-pass\n", "--name"),
], ids=["short-password", "bad-email", "bad-role", "no-name"])
def test_users_create_refuses_bad_input(runner, session, args, stdin, message):
    before = session.scalar(select(func.count(User.id)))
    result = runner.invoke(args=args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a traceback
    reread(session)
    assert session.scalar(select(func.count(User.id))) == before


def test_users_create_refuses_a_taken_email(runner, make_user, session):
    make_user(email="taken@example.com")
    result = runner.invoke(args=["users", "create", "TAKEN@example.com", "--name", "Again"],
                           input="long-enough-pass\n")
    assert result.exit_code == 1
    assert "already exists" in result.output


# --- items import -------------------------------------------------------------------------------------------------


GOOD = ("管理番号,種別,名称,部署,個人情報,バッグ\n"
        "BG-0301,バッグ,持出しバッグ,営業部,個人情報,\n"
        "LT-0301,ノートPC,営業用PC,営業部,要配慮,BG-0301\n"
        ",USBメモリ,USBメモリ,人事部,なし,\n")


@pytest.fixture
def good_file(tmp_path, make_department):
    make_department("営業部")
    make_department("人事部")
    path = tmp_path / "items.csv"
    path.write_bytes(GOOD.encode("cp932"))
    return path


def test_items_import_dry_run_imports_nothing(runner, session, good_file):
    before = count(session, Item)
    result = runner.invoke(args=["items", "import", str(good_file), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Dry run: 3 row(s) would be imported (cp932)." in result.output
    assert count(session, Item) == before


@pytest.mark.postgres  # the whole import in the command's one transaction
def test_items_import_imports_all(runner, session, good_file):
    before = count(session, Item)
    result = runner.invoke(args=["items", "import", str(good_file)])
    assert result.exit_code == 0, result.output
    assert "Imported 3 item(s)." in result.output
    assert count(session, Item) == before + 3
    bag = session.scalar(select(Item).where(Item.asset_tag == "BG-0301"))
    assert [i.asset_tag for i in bag.contents] == ["LT-0301"]
    assert session.scalar(select(Item).where(Item.kind == Kind.usb)).asset_tag == "USB-0001"
    sources = session.scalars(select(Event.source).where(Event.action == "item_created")).all()
    assert sources == ["cli"] * 3
    # importing the same file again is refused as a whole: the tags are taken
    again = runner.invoke(args=["items", "import", str(good_file)])
    assert again.exit_code != 0
    assert "line 2:" in again.output and "line 3:" in again.output and "already in use" in again.output
    assert count(session, Item) == before + 3


def test_items_import_broken_file_lists_line_numbers(runner, session, tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("kind,name,asset_tag\n"
                    "laptop,good,LT-1\n"
                    "spaceship,bad kind,\n"
                    "laptop,,\n"
                    "usb,dup,lt-1\n", encoding="utf-8")
    before = count(session, Item)
    result = runner.invoke(args=["items", "import", str(path)])
    assert result.exit_code != 0
    out = result.output
    assert "line 3: Kind must be one of" in out
    assert "line 4: Name is required." in out
    assert "line 5: The asset tag LT-1 also appears on line 2." in out
    assert "line 2:" not in out
    assert "3 error(s); nothing imported." in out
    assert count(session, Item) == before
    # the dry run reports the same and fails the same way
    dry = runner.invoke(args=["items", "import", str(path), "--dry-run"])
    assert dry.exit_code != 0 and "line 3:" in dry.output


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "The file is empty."),
    (b"\x80\x81\xff\xfe\x80\x81\xff\xfe", "neither UTF-8 nor Shift_JIS"),
    (b"kind,name\n", "line 2: The file has no rows to import."),
    (b"name\nDell\n", "line 1: Missing columns: kind."),
], ids=["empty", "bad-encoding", "header-only", "missing-column"])
def test_items_import_unreadable_files(runner, session, tmp_path, raw, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(raw)
    result = runner.invoke(args=["items", "import", str(path)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert count(session, Item) == 0


def test_items_import_errors_in_japanese_by_default(app, runner, tmp_path):
    app.config["DEFAULT_LANGUAGE"] = "ja"
    path = tmp_path / "bad.csv"
    path.write_bytes("種別,名称\nノートPC,\n".encode("cp932"))
    result = runner.invoke(args=["items", "import", str(path)])
    assert result.exit_code == 1
    assert "line 2: 名前を入力してください。" in result.output


def test_items_import_missing_file(runner):
    result = runner.invoke(args=["items", "import", "/nonexistent/items.csv"])
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.postgres  # a failure inside the transaction, rolled back
def test_items_import_error_found_only_at_import_time_is_reported_cleanly(runner, session, tmp_path):
    """A bag inside a bag passes no check today; the command must still fail with a message, not a traceback."""
    path = tmp_path / "bags.csv"
    path.write_text("asset_tag,kind,name,bag\nBG-1,bag,outer,\nBG-2,bag,inner,BG-1\n", encoding="utf-8")
    result = runner.invoke(args=["items", "import", str(path)])
    assert result.exit_code == 1, result.output
    assert "line 3" in result.output and "bag cannot be put inside a bag" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert count(session, Item) == 0


# --- demo ---------------------------------------------------------------------------------------------------------


@pytest.mark.postgres  # the demo data written through the rules
def test_demo_loads_items_of_every_kind_a_bag_and_users(runner, client, session):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "Demo data loaded." in result.output
    reread(session)
    for kind in Kind:
        assert session.scalar(select(func.count(Item.id)).where(Item.kind == kind)) == 12, kind
    bags_with_contents = [b for b in session.scalars(select(Item).where(Item.kind == Kind.bag)) if b.contents]
    assert len(bags_with_contents) == 1
    assert sorted(i.kind.value for i in bags_with_contents[0].contents) == ["folder", "laptop", "usb"]
    assert sorted(u.role.value for u in session.scalars(select(User))) == ["admin", "security", "staff"]
    # every demo user can sign in with the password printed once
    printed = re.findall(r"^\s+(staff|security|admin)\s+(\S+@\S+)\s+(\S+)$", result.output, re.M)
    assert sorted(role for role, _, _ in printed) == ["admin", "security", "staff"]
    for _role, email, password in printed:
        fresh = client.application.test_client()
        assert sign_in(fresh, email, password).status_code == 302, email

    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0, second.output
    assert "already loaded" in second.output
    reread(session)
    assert session.scalar(select(func.count(Item.id))) == 60
    assert session.scalar(select(func.count(User.id))) == 3


# --- db upgrade and bootstrap -------------------------------------------------------------------------------------


@pytest.mark.postgres  # the migrations
def test_db_upgrade_is_repeatable(runner):
    for _ in range(2):
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "Database is up to date." in result.output


def test_bootstrap_creates_first_admin_once(runner, client, session):
    result = runner.invoke(args=["bootstrap"])
    assert result.exit_code == 0, result.output
    password = re.search(r"password: (\S+)", result.output).group(1)
    resp = sign_in(client, "admin@example.com", password)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/password")
    again = runner.invoke(args=["bootstrap"])
    assert again.exit_code == 0 and "password" not in again.output
    reread(session)
    assert session.scalar(select(func.count(User.id))) == 1
