"""Invoices and credit notes as a PDF: one A4 page, drawn the way tickets are (ticket_pdf.py's fonts)."""
from __future__ import annotations

from flask_babel import gettext as _
from fpdf import FPDF

from webapp.models import Invoice, Order
from webapp.services.messaging import language
from webapp.services.messaging.ticket_pdf import fonts, text_for
from webapp.templating import money, when


def invoice_pdf(invoice: Invoice, order: Order, *, credits: Invoice | None = None, reason: str | None = None) -> bytes:
    """The invoice (or the credit note, naming the invoice it corrects): net, tax and gross per tax rate.

    In the language the buyer bought in, whoever asks for it.
    """
    with language.speaking(order.locale):
        return _invoice_pdf(invoice, order, credits=credits, reason=reason)


def _invoice_pdf(invoice: Invoice, order: Order, *, credits: Invoice | None, reason: str | None) -> bytes:
    event = order.event
    credit_note = invoice.kind == "credit_note"
    title = _("Credit note") if credit_note else _("Invoice")
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_title(f"{title} {invoice.label}")
    pdf.set_author("Ticketbooth")
    family, _mono, unicode = fonts(pdf)
    t = text_for(unicode)
    width = pdf.w - 40
    pdf.add_page()
    pdf.set_fill_color(30, 41, 59)
    pdf.rect(0, 0, pdf.w, 16, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_font(family, "B", 12)
    pdf.set_xy(20, 5)
    pdf.cell(width / 2, 6, t("TICKETBOOTH"))
    pdf.set_xy(20 + width / 2, 5)
    pdf.cell(width / 2, 6, t(f"{title} {invoice.label}"), align="R")

    pdf.set_text_color(17, 17, 17)
    pdf.set_xy(20, 26)
    pdf.set_font(family, "B", 18)
    pdf.cell(width, 9, t(f"{title} {invoice.label}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10.5)
    facts = [_("Issued: %(date)s", date=when(invoice.issued_at, tz=event.timezone)),
             _("Order: #%(number)s", number=order.id)]
    if credits is not None:
        facts.append(_("Corrects invoice %(label)s", label=credits.label))
    if reason:
        facts.append(_("Reason: %(reason)s", reason=reason))
    for fact in facts:
        pdf.set_x(20)
        pdf.cell(width, 6, t(fact), new_x="LMARGIN", new_y="NEXT")

    pdf.ln(4)
    pdf.set_x(20)
    pdf.set_font(family, "B", 11)
    pdf.cell(width, 6, t(_("Billed to")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10.5)
    pdf.set_x(20)
    pdf.multi_cell(width, 5.5, t(f"{order.billing_name or ''}\n{order.billing_address or ''}".strip()),
                   new_x="LMARGIN", new_y="NEXT")

    pdf.ln(4)
    pdf.set_x(20)
    pdf.set_font(family, "B", 11)
    pdf.cell(width, 6, t(f"{event.title} · {when(event.starts_at, tz=event.timezone)} · {event.venue}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    columns = ((_("Tax rate"), 40), (_("Net"), 40), (_("Tax"), 40), (_("Gross"), width - 120))
    pdf.set_fill_color(241, 245, 249)
    pdf.set_x(20)
    for n, (label, w) in enumerate(columns):
        pdf.cell(w, 8, t(label), border="B", fill=True, align="L" if n == 0 else "R")
    pdf.ln()
    pdf.set_font(family, "", 10.5)
    def amount(value: int) -> str:
        # A credit note's figures are negative, as booked: "−€45.00".
        return t(("−" if credit_note and value else "") + money(value, invoice.currency))

    for line in invoice.lines:
        pdf.set_x(20)
        pdf.cell(40, 7, t(f"{line['rate_bp'] / 100:g} %"))
        for key, w in (("net", 40), ("tax", 40), ("gross", width - 120)):
            pdf.cell(w, 7, amount(line[key]), align="R")
        pdf.ln()
    pdf.set_x(20)
    pdf.set_font(family, "B", 11)
    pdf.cell(120, 9, t(_("Total refunded") if credit_note else _("Total paid")), border="T")
    pdf.cell(width - 120, 9, amount(invoice.gross_minor), border="T", align="R")
    pdf.ln(14)
    pdf.set_x(20)
    pdf.set_font(family, "", 8.5)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(width, 4.5, t(_("Prices include tax. Numbers of invoices and credit notes run without gaps"
                                   " in their series.")))
    return bytes(pdf.output())
