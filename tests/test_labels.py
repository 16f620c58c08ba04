"""Labels without HTTP: tokens and URLs, layouts, the drawing plan, fonts, and QR codes that must scan.

Every QR code the project draws is read back with zxing-cpp: the PNGs of every layout, the PDF sheets
rasterised by poppler, and labels degraded the way a phone camera sees them (Pillow only, no numpy).
"""

from __future__ import annotations

import inspect
import math
import random
import re
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageEnhance, ImageFilter
from sqlalchemy import select

from tests import camera
from tests.helpers import need_poppler, pdf_text
from tracker.errors import InvalidInput
from tracker.items import register as items
from tracker.labels import design, fonts, layouts, qr, render, service
from tracker.labels.layouts import LAYOUTS, PRINTERS, SHEETS, Printer, Sheet
from tracker.models import LabelToken

BASE = "https://track.example.com"
LONG_BASE = "https://assets.example-company.co.jp"  # a longer URL gives a bigger (denser) code
PATH_BASE = "https://intranet.example.com/tracker"  # lower-case path: no upper-casing, plain /s/
BASES = (BASE, LONG_BASE, PATH_BASE)
FINDER = "拾得された方はQRコードを読み取るか、お近くの交番へお届けください"  # the default in tracker/config.py
DPI = 300
PX_PER_MM = DPI / 25.4
B32 = re.compile(r"^[A-Z2-7]{26}$")


def token(n: int = 0) -> str:
    """A fixed, valid token (deterministic tests); new_token() itself is tested below."""
    rng = random.Random(n)
    return "".join(rng.choice(items.TOKEN_ALPHABET) for _ in range(items.TOKEN_LENGTH))


def decode(img: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(img)]


def label(url: str, tag: str = "LT-0001", data_class: str = "sensitive", finder: str = FINDER,
          name: str | None = "山田 花子") -> design.LabelData:
    return design.LabelData(url=url, asset_tag=tag, data_class=data_class, finder_text=finder, name=name)


def draw(data: design.LabelData, layout) -> Image.Image:
    """The label as the project renders it for the layout (sheet PNG at 300 dpi, or the printer's image)."""
    if isinstance(layout, Printer):
        return render.printer_png(data, layout)
    return render.render_png(data, layout.label_w, layout.label_h, dpi=DPI)


def assert_ql_raster(raw: bytes) -> None:
    """Sanity of Brother QL raster: the invalidate run of zero bytes, ESC @ (initialise), ESC i commands, and
    raster lines ('g') ending with a print command. brother_ql_next puts one 'ESC i a 1' (switch to raster
    mode) before the invalidate bytes for printers in another mode; the zeros follow straight after it."""
    body = raw[4:] if raw.startswith(b"\x1bia\x01") else raw
    assert body.startswith(b"\x00" * 200), raw[:16]
    assert body.lstrip(b"\x00").startswith(b"\x1b@")
    assert b"\x1bia\x01" in raw and b"\x1biz" in raw and b"\x1biM" in raw  # mode, media, various mode
    assert b"g\x00" in raw or b"G" in raw  # raster lines
    assert raw.endswith(b"\x1a")  # print with feeding


# --- 1. tokens and URLs -------------------------------------------------------------------------------------------


def test_new_token_is_26_base32_characters_of_130_bits():
    assert items.TOKEN_ALPHABET == "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    assert len(set(items.TOKEN_ALPHABET)) == 32
    tokens = [items.new_token() for _ in range(1000)]
    for t in tokens:
        assert len(t) == 26 and B32.match(t), t
    assert len(set(tokens)) == 1000
    assert 26 * math.log2(len(items.TOKEN_ALPHABET)) == 130
    # over 1,000 tokens every character of the alphabet shows up (no stuck or missing symbols)
    assert set("".join(tokens)) == set(items.TOKEN_ALPHABET)


def test_new_token_draws_from_secrets(monkeypatch):
    calls = []

    def token_bytes(n):
        calls.append(n)
        return b"\x00" * n

    monkeypatch.setattr(items.secrets, "token_bytes", token_bytes)
    assert items.new_token() == "A" * 26
    assert calls == [17]  # 136 bits drawn from the CSPRNG, 130 of them kept


@pytest.mark.parametrize(("base", "expected"), [
    ("https://track.example.com", "HTTPS://TRACK.EXAMPLE.COM/S/{t}"),
    ("https://track.example.com/", "HTTPS://TRACK.EXAMPLE.COM/S/{t}"),
    ("https://Track.Example.com", "HTTPS://TRACK.EXAMPLE.COM/S/{t}"),
    ("http://127.0.0.1:5000", "HTTP://127.0.0.1:5000/S/{t}"),
    ("https://assets.example-company.co.jp", "HTTPS://ASSETS.EXAMPLE-COMPANY.CO.JP/S/{t}"),
    ("https://track.example.com/TRACKER", "HTTPS://TRACK.EXAMPLE.COM/TRACKER/S/{t}"),
    # a lower-case path is case-sensitive on the server: keep it and use /s/
    ("https://intranet.example.com/tracker", "https://intranet.example.com/tracker/s/{t}"),
    ("https://intranet.example.com/tracker/", "https://intranet.example.com/tracker/s/{t}"),
    # characters outside QR alphanumeric mode: keep the base as it is
    ("https://track_1.example.com", "https://track_1.example.com/s/{t}"),
])
def test_label_url(base, expected):
    t = token(1)
    assert qr.label_url(base, t) == expected.format(t=t)


def test_label_url_uppercases_the_token_only_when_the_whole_url_is_alphanumeric():
    t = token(2)
    assert qr.label_url(BASE, t.lower()).endswith("/S/" + t)
    assert qr.label_url(PATH_BASE, t) == f"{PATH_BASE}/s/{t}"  # unchanged case


@pytest.mark.parametrize("base", ["https://track.example.com", "http://127.0.0.1:5000"])
def test_qr_version_is_3_for_typical_bases(base):
    for n in range(5):
        assert qr.version(qr.label_url(base, token(n))) == 3
    assert qr.version(qr.label_url(base, items.new_token())) == 3


# --- 2. every QR the project renders decodes to the exact URL -----------------------------------------------------


@pytest.mark.parametrize("base", BASES, ids=["short", "long", "path"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_png_of_every_layout_decodes_to_the_exact_url(name, base):
    layout = LAYOUTS[name]
    url = qr.label_url(base, token(3))
    for data in (label(url), label(url, data_class="none", finder="", name=None)):
        img = draw(data, layout)
        if isinstance(layout, Printer):
            assert img.size == (layout.width_px, layout.length_px)  # across and along the tape, in the printer's dots
        else:
            assert img.size == (round(layout.label_w * PX_PER_MM), round(layout.label_h * PX_PER_MM))
        assert decode(img) == [url], (name, base)


def test_printer_stock_matches_the_brother_rolls():
    assert {p.name: (p.width_px, p.ql_label) for p in PRINTERS} == {"ql-62": (696, "62"), "ql-29x90": (306, "29x90")}


PDF_START = {  # start_at per sheet layout: the first N-1 slots of page 1 stay blank
    "jp-10": 1, "jp-12": 2, "jp-18": 4, "jp-21": 21, "jp-24": 5, "jp-44": 10, "jp-65": 7,
    "jp-65-hisago": 30, "avery-l7160": 3, "avery-l7651": 13,
}
PDF_SECOND_PAGE = {"jp-24": 2, "jp-65": 4}  # labels that spill onto page 2


def pdf_labels(sheet: Sheet) -> list[design.LabelData]:
    count = sheet.per_page - PDF_START[sheet.name] + 1 + PDF_SECOND_PAGE.get(sheet.name, 0)
    classes = ("none", "personal", "sensitive")
    return [label(qr.label_url(LONG_BASE, token(100 + i)), tag=f"LT-{i + 1:04d}", data_class=classes[i % 3],
                  name=None) for i in range(count)]


@pytest.fixture(scope="module")
def rasterised_pdfs(tmp_path_factory):
    """Every sheet layout as a PDF, rasterised at 300 dpi by pdftoppm (all at once, in parallel)."""
    exe = need_poppler("pdftoppm")
    root = tmp_path_factory.mktemp("pdfs")
    procs = {}
    for sheet in SHEETS:
        folder = root / sheet.name
        folder.mkdir()
        pdf = folder / "sheet.pdf"
        with open(pdf, "wb") as fh:
            count = render.write_pdf(pdf_labels(sheet), sheet, fh, start_at=PDF_START[sheet.name])
        assert count == len(pdf_labels(sheet))
        procs[sheet.name] = subprocess.Popen([exe, "-r", str(DPI), "-gray", "-png", str(pdf), str(folder / "page")])
    for proc in procs.values():
        assert proc.wait(timeout=120) == 0
    return {name: sorted((root / name).glob("page-*.png")) for name in procs}


def crop(page: Image.Image, sheet: Sheet, slot: int) -> Image.Image:
    x, y = sheet.position(slot)
    return page.crop((round(x * PX_PER_MM), round(y * PX_PER_MM), round((x + sheet.label_w) * PX_PER_MM),
                      round((y + sheet.label_h) * PX_PER_MM)))


@pytest.mark.parametrize("name", [s.name for s in SHEETS])
def test_pdf_sheet_decodes_every_label_in_its_slot(rasterised_pdfs, name):
    sheet = LAYOUTS[name]
    data = pdf_labels(sheet)
    pages = rasterised_pdfs[name]
    assert len(pages) == (2 if name in PDF_SECOND_PAGE else 1)
    expected = {}
    for i, d in enumerate(data):
        expected[divmod(PDF_START[name] - 1 + i, sheet.per_page)] = d.url
    for p, path in enumerate(pages):
        page = Image.open(path).convert("L")
        assert abs(page.width - 210 * PX_PER_MM) <= 2 and abs(page.height - 297 * PX_PER_MM) <= 2  # A4 at 100 %
        for slot in range(sheet.per_page):
            piece = crop(page, sheet, slot)
            found = decode(piece)
            if (p, slot) in expected:
                assert found == [expected[(p, slot)]], f"{name} page {p + 1} slot {slot + 1}"
            else:
                assert found == [], f"{name} page {p + 1} slot {slot + 1} should be blank"
                inner = piece.crop((3, 3, piece.width - 3, piece.height - 3))
                assert inner.getextrema()[0] >= 250, f"{name} page {p + 1} slot {slot + 1} has ink"


def test_pdf_start_at_is_clamped_to_the_sheet_and_counts_labels(tmp_path):
    sheet = LAYOUTS["jp-24"]
    assert render.write_pdf([], sheet, str(tmp_path / "empty.pdf")) == 0
    data = [label(qr.label_url(BASE, token(i)), tag=f"LT-{i:04d}", name=None) for i in range(3)]
    seen = []
    assert render.write_pdf(data, sheet, str(tmp_path / "three.pdf"), progress=seen.append) == 3
    assert seen[-1] == 3


# --- 3. a phone camera's view of the smallest labels --------------------------------------------------------------


def _frame(img: Image.Image, pad: int, bg: int) -> Image.Image:
    out = Image.new("L", (img.width + 2 * pad, img.height + 2 * pad), bg)
    out.paste(img, (pad, pad))
    return out


def _noise(img: Image.Image, sigma: float, seed: int) -> Image.Image:
    """Additive Gaussian noise from a seeded generator (Image.effect_noise draws from C rand(), which
    cannot be seeded from Python, so its field is built here and added with ImageChops)."""
    rng = random.Random(seed)
    field = bytes(max(0, min(255, round(128 + rng.gauss(0, sigma)))) for _ in range(img.width * img.height))
    return ImageChops.add(img, Image.frombytes("L", img.size, field), scale=1.0, offset=-128)


def capture(img: Image.Image, symbol_px: int, target: int, blur: float = 0, angle: float = 0,
            contrast: float | None = None, sigma: float = 0, seed: int = 7) -> Image.Image:
    """What a phone sees: the label on paper (grey when lit badly), scaled so that the QR symbol is
    `target` pixels wide, then focus blur, a tilted hand, washed-out contrast and sensor noise."""
    bg = 150 if contrast else 255
    img = _frame(img.convert("L"), 30, bg)
    f = target / symbol_px
    img = img.resize((round(img.width * f), round(img.height * f)), Image.Resampling.BILINEAR)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    if angle:
        img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=bg)
    if contrast:
        img = ImageEnhance.Contrast(img).enhance(contrast)
    if sigma:
        img = _noise(img, sigma, seed)
    return img


SMALLEST = ["jp-65", "avery-l7651", "ql-29x90"]
CAMERA = {  # (QR symbol width in px, blur radius, rotation degrees, contrast, noise sigma)
    "as seen, small": dict(target=120),
    "as seen, large": dict(target=150),
    "blur 1.0": dict(target=120, blur=1.0),
    "blur 1.5": dict(target=150, blur=1.5),
    "rotated 5": dict(target=130, angle=5),
    "rotated 15": dict(target=130, angle=15),
    "rotated -12": dict(target=130, angle=-12),
    "low contrast on grey": dict(target=120, contrast=0.4),
    "noise": dict(target=130, sigma=20),
    "all combined": dict(target=140, blur=1.2, angle=10, contrast=0.4, sigma=10),
}


@pytest.mark.parametrize("base", [BASE, LONG_BASE], ids=["short", "long"])
@pytest.mark.parametrize("name", SMALLEST)
def test_smallest_labels_scan_through_a_phone_camera(name, base):
    layout = LAYOUTS[name]
    url = qr.label_url(base, token(4))
    data = label(url)
    img = draw(data, layout)
    plan = design.plan(data, layout.label_w, layout.label_h)
    n = len(plan.modules)
    module_px = int(plan.qr[2] * PX_PER_MM // (n + 2 * plan.quiet))  # as render_png puts modules on whole dots
    assert module_px >= 5, "the code is too small to survive a phone's view"
    failed = []
    for what, params in CAMERA.items():
        seen = capture(img, module_px * n, **params)
        if decode(seen) != [url]:
            failed.append(what)
    assert failed == [], f"{name}: did not scan when {failed}"


def _symbol_box_px(plan: design.Plan, dpi: int = DPI) -> tuple[int, int, int, int, int]:
    """Where render_png puts the symbol (modules on whole dots): left, top, right, bottom, dots a module."""
    scale = dpi / 25.4
    qx, qy, side = plan.qr
    n, q = len(plan.modules), plan.quiet
    module_px = int(side * scale // (n + 2 * q))
    slack = (round(side * scale) - module_px * (n + 2 * q)) // 2
    x0, y0 = round(qx * scale) + slack + q * module_px, round(qy * scale) + slack + q * module_px
    return x0, y0, x0 + n * module_px, y0 + n * module_px, module_px


@pytest.mark.parametrize("base", [BASE, LONG_BASE], ids=["short", "long"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_the_code_keeps_four_modules_clear_to_the_text_and_the_labels_edge(name, base):
    """ISO/IEC 18004's quiet zone: 4 modules of white around the symbol, on the label (its edge meets a black lid
    or a coloured drive), and the asset tag and the mark start after it; in the PDF's geometry and the PNG's dots."""
    layout = LAYOUTS[name]
    data = label(qr.label_url(base, token(9)), tag="W" * 12)
    plan = design.plan(data, layout.label_w, layout.label_h)
    m, n = plan.module, len(plan.modules)
    left, top = plan.qr[0] + plan.quiet * m, plan.qr[1] + plan.quiet * m
    right, bottom = left + n * m, top + n * m
    eps = 1e-9
    assert min(left, top, layout.label_h - bottom) >= 4 * m - eps, (name, left / m, top / m)
    for x, _y, _size, _text, _inv in plan.texts:
        assert x - right >= 4 * m - eps, (name, (x - right) / m)
    for bx, *_ in plan.boxes:
        assert bx - right >= 4 * m - eps, (name, (bx - right) / m)
    img = render.render_png(data, layout.label_w, layout.label_h).convert("L")
    x0, y0, x1, y1, px = _symbol_box_px(plan)
    zone = x1 + 4 * px  # the symbol's columns and its quiet zone on the right
    clear = [img.crop((0, 0, x0, img.height)), img.crop((0, 0, zone, y0)), img.crop((0, y1, zone, img.height)),
             img.crop((x1, 0, zone, img.height))]
    assert all(part.getextrema()[0] == 255 for part in clear), name
    assert x0 >= 4 * px and y0 >= 4 * px and img.height - y1 >= 4 * px, (name, x0 / px, y0 / px)


CAMERA_SHOTS = 24  # photos per surface; each is one seed of camera.Shot, the same for the label and the reference


@pytest.mark.parametrize("name", ["jp-65", "ql-29x90"])
def test_smallest_labels_on_a_dark_or_coloured_surface_read_as_well_as_the_symbol_alone(name):
    """A label on a black laptop lid or a coloured USB drive, photographed downscaled, out of focus, tilted, in dim
    light, scratched and JPEG-compressed, reads as often as the same symbol printed alone with the standard's
    quiet zone on white paper, by zxing-cpp and by OpenCV alike."""
    camera.need_opencv()
    layout = LAYOUTS[name]
    url = qr.label_url(LONG_BASE, token(4))  # the denser code of a long BASE_URL
    data = label(url)
    plan = design.plan(data, layout.label_w, layout.label_h)
    img = draw(data, layout)
    if isinstance(layout, Printer) and layout.rotate:
        img = img.rotate(-90, expand=True)  # as it sits on the item: the design's way up
    module_px = _symbol_box_px(plan, layout.dpi if isinstance(layout, Printer) else DPI)[4]
    alone = camera.symbol_alone(plan.modules, module_px)
    shots = [camera.Shot.draw(seed) for seed in range(CAMERA_SHOTS)]
    results = {}
    for decoder, read in camera.DECODERS.items():
        reference = sum(read(camera.photograph(alone, camera.SURFACES["white paper"], shot, seed)) == [url]
                        for seed, shot in enumerate(shots))
        for surface, colour in camera.SURFACES.items():
            reads = sum(read(camera.photograph(img, colour, shot, seed)) == [url] for seed, shot in enumerate(shots))
            results[(decoder, surface)] = (reads, reference)
    slack = CAMERA_SHOTS // 8  # a sample this size varies by a few photos either way
    worse = {k: v for k, v in results.items() if v[0] < v[1] - slack}
    assert worse == {}, f"{name}: reads (label, symbol alone) of {CAMERA_SHOTS}: {results}"
    for (decoder, surface), (reads, _) in results.items():  # the surface around the label costs nothing
        assert reads >= results[(decoder, "white paper")][0] - slack, (decoder, surface, results)
    zxing_reads = [reads for (decoder, _), (reads, _) in results.items() if decoder == "zxing-cpp"]
    assert min(zxing_reads) >= CAMERA_SHOTS * 3 // 4, results  # the phone's decoder reads most photos


# --- 4. fonts -----------------------------------------------------------------------------------------------------

SAMPLES = ["山田 花子", "佐藤 太郎", "髙橋 和子", "営業部", "総務部 人事課", "経理部", "情報システム部", "要配慮個人情報",
           "個人情報あり", "①②③", "ー", "「」", "（株）", "ノートPC", "USBメモリ", "書類フォルダ", "〒100-0001",
           "ＡＢＣ１２３", "・、。", "…"]


def _reminder_text() -> str:
    """The literal strings that render._reminder draws into the PDF."""
    source = inspect.getsource(render._reminder)
    return "".join(re.findall(r'"([^"]*)"', source.split('"""', 2)[-1]))


def test_reminder_line_is_found_in_the_source():
    text = _reminder_text()
    assert "実際のサイズ (100%)" in text and "fit to page" in text


@pytest.mark.parametrize("text", [
    *[m for pair in design.MARKS.values() for m in pair],
    FINDER,
    "__reminder__",
    design.ELLIPSIS,
    *SAMPLES,
])
def test_the_label_font_has_every_glyph_the_project_prints(text):
    if text == "__reminder__":
        text = _reminder_text()
    assert fonts.missing_glyphs(text) == set()


def test_default_finder_text_matches_the_config():
    source = Path(inspect.getsourcefile(design)).parents[1].joinpath("config.py").read_text(encoding="utf-8")
    assert FINDER in source


def test_missing_glyphs_reports_what_would_print_as_boxes():
    assert fonts.missing_glyphs("\U0001f600 ok") == {"\U0001f600"}
    assert fonts.missing_glyphs("a b\tc\n") == set()


# --- 5. text is printed literally and never overflows ------------------------------------------------------------

HOSTILE = ["{{ 7*7 }}", "<b>x</b>", "%(x)s", "{% raw %}", "&amp;", "\\n"]


@pytest.mark.parametrize("text", HOSTILE)
def test_markup_and_template_syntax_print_literally_in_the_plan(text):
    sheet = LAYOUTS["jp-10"]  # a wide label: short strings fit without an ellipsis
    plan = design.plan(label(qr.label_url(BASE, token(5)), data_class="none", finder=text, name=text),
                       sheet.label_w, sheet.label_h)
    texts = [t[3] for t in plan.texts]
    assert texts.count(text) == 2, texts  # the name and the finder line, verbatim


def test_markup_prints_literally_in_the_pdf(tmp_path):
    sheet = LAYOUTS["jp-10"]
    data = [label(qr.label_url(BASE, token(10 + i)), tag=f"LT-{i + 1:04d}", data_class="none", finder=text,
                  name=f"N{i}{text}") for i, text in enumerate(HOSTILE[:3])]
    pdf = tmp_path / "hostile.pdf"
    render.write_pdf(data, sheet, str(pdf))
    text = pdf_text(pdf)
    for i, hostile in enumerate(HOSTILE[:3]):
        assert hostile in text
        assert f"N{i}{hostile}" in text
    assert "49" not in text  # {{ 7*7 }} was not evaluated
    assert "実際のサイズ (100%)" in text and "fit to page" in text  # the print-at-100 % reminder


LONG_TEXTS = {
    "name": ["W" * 200, "営業部第一課" * 30, "山田 花子", "<b>" * 40, "A " * 100, "ー" * 60, "「」" * 50],
    "finder": ["", FINDER, FINDER * 5, "W" * 500, "。" * 100, "ab " * 300, "W" * 3 + "」" * 60, "x" * 3,
               "QRコード" * 40, "読み取る " * 60],
    "tag": ["LT-0001", "W" * 32, "M" * 32, "BG-0001-" + "9" * 24],
}


def _overflow_cases():
    """Each long text with the others at their usual values, then everything long at once."""
    usual = {"name": "山田 花子", "finder": FINDER, "tag": "LT-0001"}
    for key, values in LONG_TEXTS.items():
        for value in values:
            yield {**usual, key: value}
    yield {"name": None, "finder": "W" * 500, "tag": "W" * 32}
    yield {"name": "W" * 200, "finder": "W" * 500, "tag": "W" * 32}
    yield {"name": "営業部" * 60, "finder": "」" * 200, "tag": "M" * 32}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_no_text_overflows_any_layout(name):
    layout = LAYOUTS[name]
    url = qr.label_url(LONG_BASE, token(6))
    for case in _overflow_cases():
        for data_class in ("none", "personal", "sensitive"):
            plan = design.plan(design.LabelData(url, case["tag"], data_class, case["finder"], case["name"]),
                               layout.label_w, layout.label_h)
            qx, qy, side = plan.qr
            assert qx >= 0 and qy >= 0 and qx + side <= layout.label_w and qy + side <= layout.label_h
            for x, y, size, text, _inv in plan.texts:
                assert x > qx + side, "text over the QR code"
                assert fonts.width(text, size) * design.PT + x <= layout.label_w + 1e-9, (name, text)
                assert 0 < y <= layout.label_h, (name, text, y)
            for bx, by, bw, bh in plan.boxes:
                assert bx + bw <= layout.label_w + 1e-9 and by + bh <= layout.label_h + 1e-9


@pytest.mark.parametrize("name", ["jp-65", "jp-24", "ql-29x90"])
def test_long_text_is_shortened_with_an_ellipsis(name):
    layout = LAYOUTS[name]
    plan = design.plan(label(qr.label_url(BASE, token(7)), data_class="none", finder="W" * 500, name="営業部" * 40),
                       layout.label_w, layout.label_h)
    texts = [t[3] for t in plan.texts]
    name_line = next(t for t in texts if t.startswith("営業部"))
    assert name_line.endswith("…") and len(name_line) < 120
    finder_lines = [t for t in texts if t.startswith("W")]
    assert finder_lines and finder_lines[-1].endswith("…")


WORDS = ["QRコード", "拾得", "読み取る", "お近く", "交番", "お届け", "ください", "03-1234-5678", "USBメモリ",
         "ノートPC", "scan", "please", "station", "情報", "システム"]
WRAP_TEXTS = [FINDER, "落とし物です。QRコードを読み取ってください。", "拾得者の方は 03-1234-5678 までお電話ください",
              "USBメモリ・ノートPCを拾われた方はQRコードを読み取ってください",
              "If found, please scan the QR code or call 03-1234-5678, or take it to the nearest police station.",
              "情報システム部 " * 8, FINDER * 3]


def _split_words(lines: list[str], text: str) -> list[str]:
    """Words of WORDS that a line break (or a cut with an ellipsis) falls inside."""
    flat = " ".join(text.split())
    broken, at = [], 0
    for line in lines:
        body = line.removesuffix("…")
        at = flat.index(body, at) + len(body) if body else at
        for word in WORDS:
            for k in range(1, len(word)):
                if flat[:at].endswith(word[:k]) and flat[at:].lstrip().startswith(word[k:]):
                    broken.append(f"{line!r} ends inside {word}")
    return broken


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_label_text_never_breaks_inside_a_word(name):
    """The finder's line wraps between words and Japanese phrases (QRコード stays whole) on every layout, and
    what does not fit ends with an ellipsis after a whole word; nothing overflows the label."""
    layout = LAYOUTS[name]
    url = qr.label_url(LONG_BASE, token(6))
    for text in WRAP_TEXTS:
        for data_class, name_shown in (("none", None), ("sensitive", "営業部第一課 山田 花子" * 3)):
            data = design.LabelData(url, "LT-0001", data_class, text, name_shown)
            plan = design.plan(data, layout.label_w, layout.label_h)
            finder = plan.texts[1 if data_class == "none" else 3:]  # after the tag (and the mark and the name)
            lines = [t[3] for t in finder]
            assert lines, (name, text)
            assert _split_words(lines, text) == [], (name, text, lines)
            assert all(not line.endswith("…") for line in lines[:-1]), lines
            for x, _y, size, line, _inv in finder:
                assert fonts.width(line, size) * design.PT + x <= layout.label_w + 1e-9, (name, line)


def test_wrap_keeps_words_whole_and_cuts_at_a_word_with_an_ellipsis():
    assert design.wrap("拾得された方はQRコードを読み取るか、お近くの交番へお届けください", 6, 26, 3) == [
        "拾得された方は", "QRコードを読み取るか、", "お近くの交番へ…"]
    assert design.wrap("please scan the QR code", 6, 14, 3) == ["please scan", "the QR code"]
    assert design.wrap("落とし物です。QRコードを読み取ってください。", 6, 14, 3) == ["落とし", "物です。", "QRコードを…"]
    assert design.wrap("W" * 200, 6, 10, 3) == [design.fit("W" * 200, 6, 10)]  # one word wider than a line: cut
    assert _split_words(["拾得された方はQ", "Rコード"], "拾得された方はQRコード") == ["'拾得された方はQ' ends inside QRコード"]


def test_fit_and_wrap_rules():
    assert design.fit("short", 8, 100) == "short"
    assert design.fit("a  b\n c", 8, 100) == "a b c"
    cut = design.fit("W" * 100, 8, 20)
    assert cut.endswith("…") and fonts.width(cut, 8) * design.PT <= 20
    assert design.fit("W" * 100, 8, 0.1) == ""  # not even an ellipsis fits: nothing, never overflow
    lines = design.wrap("お近くの交番へお届けください。" * 3, 6, 20, 2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    for line in design.wrap("あいうえおかきくけこ。」さしすせそ", 6, 15, 3):
        assert line[0] not in design.NO_LINE_START


def test_name_is_printed_only_when_show_name_is_on():
    layout = LAYOUTS["jp-24"]
    url = qr.label_url(BASE, token(8))
    with_name = design.plan(label(url, name="山田 花子"), layout.label_w, layout.label_h)
    without = design.plan(label(url, name=None), layout.label_w, layout.label_h)
    assert "山田 花子" in [t[3] for t in with_name.texts]
    assert all("山田" not in t[3] for t in without.texts)


@pytest.mark.postgres  # the label data query
def test_label_data_carries_the_name_only_when_asked(session, make_item):
    item = make_item(name="山田 花子のPC", department="営業部")
    current = session.scalar(select(LabelToken.token).where(LabelToken.item_id == item.id,
                                                             LabelToken.replaced_at.is_(None)))
    for show_name in (False, True):
        opts = service.LabelOptions(base_url=BASE, finder_text=FINDER, show_name=show_name)
        data = list(service.label_data(session, service.ids_stmt([item.id]), opts))
        assert len(data) == 1
        assert data[0].url == f"HTTPS://TRACK.EXAMPLE.COM/S/{current}"
        assert data[0].asset_tag == item.asset_tag and data[0].data_class == "personal"
        assert data[0].finder_text == FINDER
        assert data[0].name == ("山田 花子のPC" if show_name else None)
    assert service.options_from({"BASE_URL": BASE}).show_name is False  # off by default


# --- 6. layouts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [s.name for s in SHEETS])
def test_preset_sheets_fit_a4(name):
    sheet = LAYOUTS[name]
    assert (sheet.page_w, sheet.page_h) == (210.0, 297.0)
    assert sheet.check() is sheet
    assert sheet.pitch_x >= sheet.label_w and sheet.pitch_y >= sheet.label_h
    boxes = []
    for slot in range(sheet.per_page):
        x, y = sheet.position(slot)
        assert x >= 0 and y >= 0, slot
        assert x + sheet.label_w <= 210 + 1e-6 and y + sheet.label_h <= 297 + 1e-6, (name, slot)
        boxes.append((x, y))
    assert len(set(boxes)) == sheet.per_page
    assert sheet.fits and sheet.title


def test_preset_names_and_faces():
    assert layouts.DEFAULT_LAYOUT in LAYOUTS
    faces = {s.name: s.per_page for s in SHEETS}
    assert faces["jp-10"] == 10 and faces["jp-12"] == 12 and faces["jp-18"] == 18 and faces["jp-21"] == 21
    assert faces["jp-24"] == 24 and faces["jp-44"] == 44 and faces["jp-65"] == 65 and faces["avery-l7651"] == 65
    assert layouts.get("jp-24") is LAYOUTS["jp-24"]


def test_parse_custom_accepts_a_valid_layout():
    sheet = layouts.parse_custom("custom:page=210x297,label=50x30,grid=3x8,margin=10x12,pitch=60x34")
    assert isinstance(sheet, Sheet)
    assert (sheet.label_w, sheet.label_h, sheet.cols, sheet.rows) == (50, 30, 3, 8)
    assert (sheet.left, sheet.top, sheet.pitch_x, sheet.pitch_y) == (10, 12, 60, 34)
    assert sheet.per_page == 24 and sheet.position(23) == (130, 12 + 7 * 34)
    # page and pitch are optional (A4, and labels that touch)
    plain = layouts.get("custom:label=70x42.3,grid=3x7,margin=0x0")
    assert (plain.page_w, plain.page_h, plain.pitch_x, plain.pitch_y) == (210, 297, 70, 42.3)
    assert layouts.custom(210, 297, 66, 33.9, 3, 8, 6, 12.9, 66, 33.9).per_page == 24


@pytest.mark.parametrize("spec", [
    "custom:label=50x30,grid=4x8,margin=10x12,pitch=60x34",  # 4th column runs off the page
    "custom:label=50x30,grid=3x9,margin=10x12,pitch=60x34",  # 9th row runs off the page
    "custom:page=100x100,label=50x30,grid=3x8,margin=10x12,pitch=60x34",
    "custom:label=50x30,grid=3x8,margin=10x12,pitch=40x34",  # pitch smaller than the label
    "custom:label=50x30,grid=3x8,margin=10x12,pitch=60x20",
    "custom:label=0x30,grid=3x8,margin=10x12",  # zero sizes
    "custom:label=50x0,grid=3x8,margin=10x12",
    "custom:label=50x30,grid=0x8,margin=10x12",
    "custom:page=0x297,label=50x30,grid=1x1,margin=0x0",
    "custom:label=10x10,grid=3x8,margin=10x12",  # too small for a QR code that scans
    "custom:label=50x30,grid=3x8,margin=-1x12",  # negative: cannot be read
    "custom:label=50x30,grid=3x8",  # margin missing
    "custom:label=50x30,grid=3x8,margin=10x12,colour=red",
    "custom:",
])
def test_parse_custom_refuses_bad_layouts(spec):
    with pytest.raises(InvalidInput):
        layouts.get(spec)


@pytest.mark.parametrize("values", [
    (210, 297, 50, 30, 4, 8, 10, 12, 60, 34),
    (210, 297, 50, 30, 3, 8, -5, 12, 60, 34),
    (210, 297, 50, 30, 3, 8, 10, 12, 45, 34),
    (210, 297, 0, 30, 3, 8, 10, 12, 60, 34),
    (210, 297, 50, 30, 3, 0, 10, 12, 60, 34),
    (210, 297, -50, 30, 3, 8, 10, 12, 60, 34),
])
def test_custom_refuses_bad_measurements(values):
    with pytest.raises(InvalidInput):
        layouts.custom(*values)


def test_custom_refuses_values_that_are_not_numbers():
    """The admin form passes float(text) to custom(), and float() reads 'nan' and 'inf': no layout may come of them."""
    good = dict(page_w=210, page_h=297, label_w=50, label_h=30, cols=3, rows=8, left=10, top=12, pitch_x=60,
                pitch_y=34)
    assert layouts.custom(**good).per_page == 24
    accepted = []
    for field in good:
        if field in ("cols", "rows"):
            continue  # int(nan) raises ValueError on its own
        for bad in ("nan", "inf", "-inf"):
            try:
                layouts.custom(**{**good, field: float(bad)})
            except InvalidInput:
                continue
            accepted.append(f"{field}={bad}")
    assert accepted == [], "custom() made a layout from " + ", ".join(accepted)


def test_unknown_layout_is_refused():
    with pytest.raises(InvalidInput):
        layouts.get("jp-99")


# --- 7. files are written in chunks ------------------------------------------------------------------------------


def _tags_in(pdf: Path) -> list[str]:
    return re.findall(r"LT-\d{4}", pdf_text(pdf))


@pytest.mark.parametrize(("count", "files"), [(20, 3), (14, 2), (7, 1), (1, 1)])
def test_write_files_writes_pdfs_in_chunks(tmp_path, monkeypatch, count, files):
    monkeypatch.setattr(service, "CHUNK", 7)
    sizes = []
    real = render.write_pdf

    def spy(labels, sheet, out, **kw):
        labels = list(labels)
        sizes.append(len(labels))
        return real(labels, sheet, out, **kw)

    monkeypatch.setattr(render, "write_pdf", spy)
    data = (label(qr.label_url(BASE, token(200 + i)), tag=f"LT-{i + 1:04d}", data_class="none", finder="",
                  name=None) for i in range(count))  # a generator: nothing is held beyond a chunk
    progress = []
    written = service.write_files(data, LAYOUTS["jp-44"], str(tmp_path / "out"), "pdf", progress=progress.append)
    assert len(written) == files
    assert [Path(p).name for p in written] == [f"labels-jp-44-{i:03d}.pdf" for i in range(1, files + 1)]
    assert max(sizes) <= 7 and sum(sizes) == count and 0 not in sizes
    assert progress[-1] == count
    tags = [t for p in written for t in _tags_in(Path(p))]
    assert sorted(tags) == [f"LT-{i + 1:04d}" for i in range(count)]  # every label once


def test_write_files_png_and_ql(tmp_path):
    data = [label(qr.label_url(BASE, token(300 + i)), tag=f"LT-{i + 1:04d}") for i in range(2)]
    pngs = service.write_files(iter(data), LAYOUTS["ql-29x90"], str(tmp_path / "png"))  # auto: PNG for a printer
    assert [Path(p).name for p in pngs] == ["LT-0001.png", "LT-0002.png"]
    for path, d in zip(pngs, data, strict=True):
        assert decode(Image.open(path)) == [d.url]
    sheet_pngs = service.write_files(iter(data), LAYOUTS["jp-65"], str(tmp_path / "sheetpng"), "png")
    assert decode(Image.open(sheet_pngs[0])) == [data[0].url]
    bins = service.write_files(iter(data), LAYOUTS["ql-62"], str(tmp_path / "ql"), "ql")
    assert [Path(p).name for p in bins] == ["LT-0001.62.bin", "LT-0002.62.bin"]
    assert_ql_raster(Path(bins[0]).read_bytes())
    with pytest.raises(ValueError):
        service.write_files(iter(data), LAYOUTS["ql-62"], str(tmp_path / "x"), "pdf")
    with pytest.raises(ValueError):
        service.write_files(iter(data), LAYOUTS["jp-24"], str(tmp_path / "y"), "ql")


def test_png_zip_has_one_decodable_png_per_label(tmp_path):
    import zipfile

    data = [label(qr.label_url(LONG_BASE, token(400 + i)), tag=f"LT-{i + 1:04d}") for i in range(3)]
    path = tmp_path / "labels.zip"
    with open(path, "wb") as fh:
        assert render.write_png_zip(data, LAYOUTS["jp-44"], fh) == 3
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["LT-0001.png", "LT-0002.png", "LT-0003.png"]
        for name, d in zip(zf.namelist(), data, strict=True):
            with zf.open(name) as fh:
                img = Image.open(fh)
                img.load()
            assert decode(img) == [d.url]
            assert round(img.info["dpi"][0]) == 300
