"""Invoices and credit notes, numbered per organiser and series without gaps and never reused.

A series is an organiser's prefix ("INV-", "ACME-2026-"; `organisers.invoice_prefix`
and `credit_note_prefix`): the organiser of the order's event issues the document.
The next number of a series is taken by incrementing the series' counter row
(`invoice_series`, keyed by organiser and prefix) in the transaction that
issues the document. That UPDATE
locks the row until the transaction ends, so concurrent issuers take
numbers one after another, and a transaction that rolls back gives its
number back with everything else: no gap, no number twice. (A sequence
would be faster but leaves gaps on rollback, which invoices must not have.)
Numbering and issuing are one statement, one round trip.

Two organisers never wait for each other: each has its own counter rows.
A prefix changed (a new year's) starts a new series at 1, and the old one's
numbers stay as they were.
An invoice is issued when an order with a billing name is confirmed; each
refund of such an order issues a credit note that names the invoice. Net,
tax and gross per tax rate are fixed when the document is issued, the tax
rounded per ticket and summed per rate (services/money/tax.py): a ticket's
price is its gross, tax inside, whether the tier's tax is inclusive or was
added on top of a net price.
"""
from __future__ import annotations

import json

from sqlalchemy import select, text
from sqlalchemy.orm import Session, joinedload

from webapp.models import Invoice, InvoiceKind, Order, Refund, RefundTicket, Ticket, Tier
from webapp.services.errors import NotFound
from webapp.services.messaging import invoice_pdf
from webapp.services.money import tax

# The organiser and its prefix are read by the statement that numbers the document: one round trip.
_NEXT_NUMBER = (
    "WITH issuer AS (SELECT o.id, o.{prefix} AS series FROM events e JOIN organisers o ON o.id = e.organiser_id"
    "  WHERE e.id = :e),"
    " n AS (INSERT INTO invoice_series AS s (organiser_id, series, last_number)"
    "  SELECT id, series, 1 FROM issuer"
    "  ON CONFLICT (organiser_id, series) DO UPDATE SET last_number = s.last_number + 1"
    "  RETURNING organiser_id, series, last_number)"
)

# Lines per tax rate from the order's tickets, read by the same statement that numbers the invoice.
_ISSUE_INVOICE = text(
    _NEXT_NUMBER.format(prefix="invoice_prefix") + ","
    # Tax rounded per ticket (services/money/tax.py), then summed per rate.
    " by_rate AS (SELECT tr.tax_rate_bp AS rate_bp, sum(t.price_minor) AS gross,"
    "  sum(round(t.price_minor * tr.tax_rate_bp / (10000.0 + tr.tax_rate_bp)))::int AS tax FROM tickets t"
    "  JOIN tiers tr ON tr.id = t.tier_id WHERE t.order_id = :o GROUP BY tr.tax_rate_bp)"
    " INSERT INTO invoices (event_id, organiser_id, order_id, kind, series, number, gross_minor, currency, lines)"
    " SELECT :e, n.organiser_id, :o, 'invoice', n.series, n.last_number, :g, :c,"
    "  (SELECT coalesce(jsonb_agg(jsonb_build_object('rate_bp', rate_bp, 'gross', gross, 'tax', tax,"
    "     'net', gross - tax) ORDER BY rate_bp), '[]'::jsonb)"
    "   FROM by_rate)"
    " FROM n RETURNING id"
)

_ISSUE_CREDIT_NOTE = text(
    _NEXT_NUMBER.format(prefix="credit_note_prefix") +
    " INSERT INTO invoices (event_id, organiser_id, order_id, kind, series, number, credits_invoice_id, refund_id,"
    "  gross_minor, currency, lines)"
    " SELECT :e, n.organiser_id, :o, 'credit_note', n.series, n.last_number, :inv, :r, :g, :c,"
    "  CAST(:lines AS jsonb)"
    " FROM n RETURNING id"
)


def issue_invoice(session: Session, order: Order) -> int | None:
    """Number and issue the invoice of a just-confirmed order that has a billing name; its id (None: no name)."""
    if not order.billing_name:
        return None
    return session.execute(_ISSUE_INVOICE, {"o": order.id, "e": order.event_id,
                                            "g": order.total_minor, "c": order.currency}).scalar_one()


def line(rate_bp: int, gross: int, tax_minor: int | None = None) -> dict[str, int]:
    """A document's line at one rate: net, tax and gross (the tax of the gross unless summed per ticket)."""
    tax_minor = tax.tax_in(gross, rate_bp) if tax_minor is None else tax_minor
    return {"rate_bp": rate_bp, "net": gross - tax_minor, "tax": tax_minor, "gross": gross}


def _split(amount: int, weights: list[int]) -> list[int]:
    """`amount` in parts proportional to `weights`, in whole minor units that add up (largest remainder)."""
    total = sum(weights)
    if total <= 0:
        return [amount] + [0] * (len(weights) - 1)
    exact = [amount * w / total for w in weights]
    parts = [int(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)[:amount - sum(parts)]:
        parts[i] += 1
    return parts


def invoice_of(session: Session, order_id: int) -> Invoice | None:
    return session.scalars(select(Invoice).where(Invoice.order_id == order_id,
                                                 Invoice.kind == InvoiceKind.INVOICE.value)).first()


def issue_credit_note(session: Session, order: Order, refund: Refund) -> int | None:
    """The credit note of a refund of an invoiced order, naming its invoice; its id (None: no invoice)."""
    invoice = invoice_of(session, order.id)
    if invoice is None:
        return None
    # By the rates of the tickets given back, or, for an amount, in the invoice's proportions.
    by_rate: dict[int, int] = {}
    taxed: dict[int, int] = {}  # the tickets' own taxes, rounded per ticket as on the invoice
    for rate_bp, price in session.execute(
        select(Tier.tax_rate_bp, Ticket.price_minor).join(Ticket, Ticket.tier_id == Tier.id)
        .join(RefundTicket, RefundTicket.ticket_id == Ticket.id).where(RefundTicket.refund_id == refund.id)
    ).all():
        by_rate[rate_bp] = by_rate.get(rate_bp, 0) + price
        taxed[rate_bp] = taxed.get(rate_bp, 0) + tax.tax_in(price, rate_bp)
    if not by_rate:
        by_rate = {entry["rate_bp"]: entry["gross"] for entry in invoice.lines}
    rates = sorted(by_rate)
    parts = _split(refund.amount_minor, [by_rate[r] for r in rates])
    # Whole tickets given back (no fee kept) credit their own taxes; a part of them, its own tax.
    lines = [line(r, p, taxed[r] if taxed and p == by_rate[r] else None)
             for r, p in zip(rates, parts, strict=True) if p]
    return session.execute(_ISSUE_CREDIT_NOTE, {
        "e": order.event_id, "o": order.id, "inv": invoice.id, "r": refund.id,
        "g": refund.amount_minor, "c": order.currency, "lines": json.dumps(lines),
    }).scalar_one()


def documents_of(session: Session, order_id: int) -> list[Invoice]:
    """The order's invoice and credit notes, oldest first."""
    return list(session.scalars(select(Invoice).where(Invoice.order_id == order_id).order_by(Invoice.id)))


def documents_of_event(session: Session, event_id: int, limit: int = 1000) -> list[Invoice]:
    """An event's invoices and credit notes for the admin's list, by series and number (the first `limit`)."""
    return list(session.scalars(select(Invoice).where(Invoice.event_id == event_id)
                                .options(joinedload(Invoice.order))
                                .order_by(Invoice.series, Invoice.number).limit(limit)))


def document_pdf(session: Session, order: Order, document_id: int) -> tuple[str, bytes]:
    """(file name, PDF) of the order's invoice or credit note; NotFound if it is not this order's."""
    document = session.get(Invoice, document_id)
    if document is None or document.order_id != order.id:
        raise NotFound("No such invoice or credit note.")
    credits = session.get(Invoice, document.credits_invoice_id) if document.credits_invoice_id else None
    refund = session.get(Refund, document.refund_id) if document.refund_id else None
    data = invoice_pdf.invoice_pdf(document, order, credits=credits, reason=refund.reason if refund else None)
    return f"{document.kind.replace('_', '-')}-{document.label}.pdf", data
