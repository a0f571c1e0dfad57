"""Tickets as a PDF: one A5 page per ticket, made on demand.

fpdf2 (pure Python, maintained, no system libraries) draws the page; the QR
code is segno's module matrix drawn as vector rectangles, so it prints sharp
at any size and no image is encoded. Text uses DejaVu Sans where the system
has it (for "€", "—" and any title), else PDF's built-in Helvetica with the
few characters Latin-1 lacks replaced.
"""
from __future__ import annotations

from pathlib import Path

import segno
from flask_babel import gettext as _
from fpdf import FPDF

from webapp.models import Order, Ticket
from webapp.services.messaging import language
from webapp.templating import money, when

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_LATIN1_STANDINS = {"—": "-", "–": "-", "−": "-", "€": "EUR ", "’": "'", "‘": "'", "“": '"', "”": '"', "…": "...",
                    "✓": "v", "★": "*"}


def fonts(pdf: FPDF) -> tuple[str, str, bool]:
    """(text family, monospace family, unicode?) for this machine."""
    for folder in FONT_DIRS:
        regular, bold, mono = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf", folder / "DejaVuSansMono.ttf"
        if regular.exists() and bold.exists() and mono.exists():
            pdf.add_font("DejaVu", "", str(regular))
            pdf.add_font("DejaVu", "B", str(bold))
            pdf.add_font("DejaVuMono", "", str(mono))
            return "DejaVu", "DejaVuMono", True
    return "Helvetica", "Courier", False


def text_for(unicode: bool):
    """A function that makes text printable in the chosen font (Latin-1 stand-ins for Helvetica)."""
    def t(value: str) -> str:
        if unicode:
            return value
        for char, standin in _LATIN1_STANDINS.items():
            value = value.replace(char, standin)
        return value.encode("latin-1", "replace").decode("latin-1")
    return t


def seat_label(ticket: Ticket) -> str:
    return ticket.unit.place_label


def _qr(pdf: FPDF, code: str, x: float, y: float, size: float) -> None:
    # segno yields each row as a tuple but types it as a bare Iterable; tuple() of a tuple is itself.
    rows = [tuple(row) for row in segno.make_qr(code, error="m").matrix_iter(scale=1, border=2)]
    module = size / len(rows)
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(17, 17, 17)
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                # A hair of overlap hides the seams some viewers draw between rectangles.
                pdf.rect(x + start * module, y + r * module, (c - start) * module + 0.01, module + 0.01, style="F")
            else:
                c += 1


def order_pdf(order: Order, tickets: list[Ticket]) -> bytes:
    """The order's tickets, one page each, in ticket order, in the language the buyer bought in."""
    with language.speaking(order.locale):
        return _order_pdf(order, tickets)


def _order_pdf(order: Order, tickets: list[Ticket]) -> bytes:
    event = order.event
    pdf = FPDF(format=(148, 210), unit="mm")  # A5
    pdf.set_auto_page_break(False)
    pdf.set_title(_("Tickets — %(title)s", title=event.title))
    pdf.set_author("Ticketbooth")
    family, mono, unicode = fonts(pdf)
    t = text_for(unicode)

    width = pdf.w - 24
    for n, ticket in enumerate(tickets, start=1):
        pdf.add_page()
        pdf.set_fill_color(30, 41, 59)
        pdf.rect(0, 0, pdf.w, 14, style="F")
        pdf.set_text_color(255, 255, 255)
        pdf.set_font(family, "B", 11)
        pdf.set_xy(12, 4.5)
        pdf.cell(width / 2, 5, t("TICKETBOOTH"))
        pdf.set_font(family, "", 9)
        pdf.set_xy(12 + width / 2, 4.5)
        pdf.cell(width / 2, 5, t(_("Ticket %(n)s of %(count)s", n=n, count=len(tickets))), align="R")

        pdf.set_text_color(17, 17, 17)
        pdf.set_xy(12, 22)
        pdf.set_font(family, "B", 18)
        pdf.multi_cell(width, 8, t(event.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(12)
        pdf.set_font(family, "", 12)
        pdf.multi_cell(width, 6.5, t(when(event.starts_at, tz=event.timezone)), new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(12)
        pdf.multi_cell(width, 6.5, t(event.venue), new_x="LMARGIN", new_y="NEXT")

        pdf.ln(4)
        pdf.set_x(12)
        pdf.set_font(family, "B", 14)
        pdf.multi_cell(width, 7, t(seat_label(ticket)), new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(12)
        pdf.set_font(family, "", 11)
        pdf.multi_cell(width, 6, t(f"{ticket.tier.name} · {money(ticket.price_minor, order.currency)}"),
                       new_x="LMARGIN", new_y="NEXT")
        if ticket.attendee_name:
            pdf.set_x(12)
            pdf.set_font(family, "B", 11)
            pdf.multi_cell(width, 6, t(_("Attendee: %(name)s", name=ticket.attendee_name)),
                           new_x="LMARGIN", new_y="NEXT")

        size = 70.0
        top = max(pdf.get_y() + 8, 80.0)
        _qr(pdf, ticket.code, (pdf.w - size) / 2, top, size)
        pdf.set_xy(12, top + size + 3)
        pdf.set_font(mono, "", 11)
        pdf.cell(width, 6, ticket.code, align="C", new_x="LMARGIN", new_y="NEXT")

        pdf.set_text_color(90, 90, 90)
        pdf.set_font(family, "", 8.5)
        pdf.set_xy(12, pdf.h - 22)
        pdf.multi_cell(width, 4.5, t(_("Order #%(number)s · %(name)s", number=order.id, name=order.user.name)
                                     + "\n" + _("Show this page or the QR code at the door. Each ticket admits once.")),
                       align="C")
    return bytes(pdf.output())
