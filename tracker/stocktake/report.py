"""The closed stock-take's report: one table (PDF for the file, CSV for a spreadsheet) with the reconciliation's
totals and every listed item, with who counted it, when, how and where it was found. Written in the closer's
language with the label font, so Japanese names print; CSV cells are guarded against formula injection."""

from __future__ import annotations

from ..i18n import CLASS_LABELS, KIND_LABELS, gettext, label, when
from ..models import StockTake
from ..reports import writers
from . import reconcile as rc


def category_label(category: str) -> str:
    return {"counted": gettext("Counted"), "missing": gettext("Missing"), "out": gettext("Out with someone"),
            "unexpected": gettext("Unexpected"), "disposed": gettext("Disposed of"),
            "expected": gettext("Expected")}[category]


def why_label(why: str | None) -> str:
    if why is None:
        return ""
    return {rc.OUT_OF_SCOPE: gettext("Not in this stock-take's scope"), rc.RETIRED: gettext("Retired"),
            rc.DISPOSED: gettext("Disposed of"), rc.OTHER_PLACE: gettext("Found at another place")}[why]


def method_label(method: str | None) -> str:
    if method is None:
        return ""
    return {"phone": gettext("Phone scan"), "scanner": gettext("Label scanner"), "typed": gettext("Typed tag")}[method]


def scope_text(stocktake: StockTake) -> str:
    """What the session covers, as a reader would say it."""
    if stocktake.scope == "site":
        return gettext("Site: %(name)s", name=stocktake.site.name if stocktake.site else gettext("Main office"))
    if stocktake.scope == "department":
        return gettext("Department: %(name)s", name=stocktake.department.name)
    if stocktake.scope == "place":
        return gettext("Storage place: %(name)s", name=stocktake.place.name)
    return gettext("Every item")


def table(stocktake: StockTake, rec: rc.Reconciliation) -> writers.Table:
    header = [gettext("Result"), gettext("Asset tag"), gettext("Name"), gettext("Kind"), gettext("Personal data"),
              gettext("Department"), gettext("Home place"), gettext("Counted by"), gettext("Counted at"),
              gettext("How"), gettext("Found at"), gettext("Held by"), gettext("Due back"), gettext("Why")]
    rows = [[category_label(category), x.tag, x.name, label(KIND_LABELS, x.kind), label(CLASS_LABELS, x.data_class),
             x.department or "", x.home_place or "", x.counted_by or "", when(x.counted_at), method_label(x.method),
             x.found_place or "", x.holder or "", when(x.due_at), why_label(x.why)]
            for category in rc.CATEGORIES for x in getattr(rec, category)]
    totals = " · ".join(f"{category_label(k)}: {v}" for k, v in rec.totals().items())
    notes = [scope_text(stocktake),
             gettext("Opened %(when)s by %(name)s", when=when(stocktake.opened_at), name=stocktake.opened_by.name),
             gettext("Closed %(when)s by %(name)s", when=when(stocktake.closed_at), name=stocktake.closed_by.name),
             totals]
    return writers.Table(title=gettext("Stock-take %(n)d", n=stocktake.id), header=header, rows=rows, notes=notes,
                         lead=3)


def render(stocktake: StockTake, rec: rc.Reconciliation) -> dict[str, bytes]:
    """The PDF, the CSV and the .xlsx of the closed session (called by `sessions.close`, which hashes the PDF)."""
    t = table(stocktake, rec)
    return {"pdf": writers.to_pdf(t), "csv": writers.to_csv(t), "xlsx": writers.to_xlsx(t)}
