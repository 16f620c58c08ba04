"""The incident record as a PDF, in the reader's language, with the label font (Japanese included)."""

from __future__ import annotations

import io

from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from ..i18n import CLASS_LABELS, EVENT_LABELS, day, label, reader_zone, when
from ..labels import fonts
from ..labels.design import wrap

MARGIN = 20  # mm


def render(ctx: dict) -> bytes:
    """Lines of text drawn with drawString, which prints markup and template syntax literally."""
    incident, duty = ctx["incident"], ctx["duty"]
    font = fonts.register()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setTitle(f"Incident {incident.id}")
    width_mm = A4[0] / 72 * 25.4 - 2 * MARGIN
    y = [A4[1] - MARGIN / 25.4 * 72]

    def line(text: str, size: float = 10, gap: float = 1.35) -> None:
        for part in wrap(text, size, width_mm, 20) or [""]:
            if y[0] < MARGIN / 25.4 * 72:
                c.showPage()
                y[0] = A4[1] - MARGIN / 25.4 * 72
            c.setFont(font, size)
            c.drawString(MARGIN / 25.4 * 72, y[0], part)
            y[0] -= size * gap

    yes, no = _("Yes"), _("No")
    line(_("Incident %(n)d: %(tag)s lost", n=incident.id, tag=incident.item.asset_tag), 16)
    line(f"{_('Opened')}: {when(incident.opened_at)} — {incident.opened_by.name}")
    line(_("Times are in %(zone)s.", zone=reader_zone()))  # a report to the commission names its clock
    line("")
    line(_("What it held"), 12)
    line(f"{_('Name')}: {incident.item.name}")
    line(f"{_('Personal data')}: {label(CLASS_LABELS, incident.data_class)}")
    line(f"{_('Encrypted')}: {yes if incident.encrypted else no}")
    line(f"{_('Number of people')}: {incident.people_count or '-'}")
    line("")
    line(_("Last known"), 12)
    line(f"{_('Held by')}: {incident.holder.name + ' <' + incident.holder.email + '>' if incident.holder else '-'}")
    line(f"{_('Out since')}: {when(incident.last_known_at) if incident.last_known_at else '-'}")
    line(f"{_('Destination')}: {incident.last_known_place or '-'}")
    line("")
    line(_("Report to the Personal Information Protection Commission"), 12)
    for text, value in ((_("Sensitive personal data"), duty.sensitive),
                        (_("My Number (specific personal information)"), duty.my_number),
                        (_("More than 1,000 people"), duty.over_1000),
                        (_("Risk of financial harm"), duty.financial_harm),
                        (_("Possibly for a wrongful purpose"), duty.wrongful_purpose),
                        (_("Properly encrypted (may be exempt)"), incident.properly_encrypted)):
        line(f"[{'x' if value else ' '}] {text}")
    line(_("Report required") + ": " + (yes if duty.required else no))
    if duty.required:
        line(_("Preliminary report: promptly, by %(date)s at the latest", date=day(duty.preliminary_by)))
        line(_("Final report: by %(date)s", date=day(duty.final_by)))
    if duty.my_number:
        line(_("My Number is involved: the report follows the My Number Act's own rules and report form, which asks "
               "first whether My Number is included."))
    if duty.notify_individuals:
        line(_("Notice to the individuals (本人通知)"), 12)
        line(_("Promptly, as soon as the situation allows: tell each person the overview, which data, the cause, the "
               "risk of secondary harm and anything else useful to them."))
        line(_("Where notice is impractical (for example, no contact details): an alternative measure instead, such "
               "as a public announcement with a point of contact for enquiries."))
    line("")
    line(_("Actions taken"), 12)
    for a in incident.actions:
        line(f"{when(a.at)} {a.actor.name}: {a.text}")
    line("")
    line(_("Timeline"), 12)
    for e in ctx["timeline"]:
        line(f"{when(e.at)} {label(EVENT_LABELS, e.action)}")
    c.showPage()
    c.save()
    return buf.getvalue()

