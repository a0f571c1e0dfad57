"""The attendee list and the invoice list as CSV, streamed: memory stays flat however large the event.

Rows come from a server-side cursor (psycopg2 named cursor via
`stream_results`) in batches of `batch`, and each batch is written out and
dropped before the next is fetched. The query walks `ix_tickets_event`, so
PostgreSQL does not sort 50,000 rows either.

After the fixed columns come the attendee's name and one column per question
of the event (headed by its text, in the organiser's order): a per-order
answer is repeated on each of the order's tickets.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from webapp.models import document_label
from webapp.services.selling.attendees import questions_from_rows, questions_json

HEADER = ("order", "buyer_name", "buyer_email", "tier", "section", "row", "seat", "ticket_code",
          "checked_in", "checked_in_at", "attendee_name")

_QUESTIONS = text(f"SELECT {questions_json(':e')} AS questions")
_QUERY = text(
    "SELECT t.order_id, u.name, u.email, tr.name AS tier, un.section, un.row_label, un.seat_number, t.code,"
    " t.checked_in_at, t.attendee_name, o.answers || t.answers AS answers"
    " FROM tickets t"
    " JOIN orders o ON o.id = t.order_id"
    " JOIN users u ON u.id = o.user_id"
    " JOIN tiers tr ON tr.id = t.tier_id"
    " JOIN units un ON un.id = t.unit_id"
    " WHERE t.event_id = :e AND t.status = 'valid'"
    " ORDER BY t.id"
)


def record_export(session: Session, *, actor_id: int, event_id: int) -> None:
    """Personal data leaving the system is worth a line in the audit log. The caller commits."""
    from webapp.services import audit

    audit.record(session, actor_id=actor_id, action="event.export", entity="event", entity_id=event_id,
                 event_id=event_id, after={"format": "csv"})


def _cell(value) -> str:
    """Text a spreadsheet will not run as a formula (buyer names are user input)."""
    if value is None:
        return ""
    value = str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def attendee_csv(engine: Engine, event_id: int, batch: int = 2000) -> Iterator[str]:
    """Yield the CSV in chunks of about `batch` rows, on a connection of its own."""
    with engine.connect() as conn:
        questions = questions_from_rows(conn.execute(_QUESTIONS, {"e": event_id}).scalar())
        yield _csv([HEADER + tuple(_cell(q.label) for q in questions)])
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(_QUERY, {"e": event_id})
        # The size must be given here: without it, partitions() returned the
        # whole event as one chunk (measured: 36 MB peak instead of 2 MB).
        for rows in result.partitions(batch):
            yield _csv(
                (r.order_id, _cell(r.name), _cell(r.email), _cell(r.tier), _cell(r.section), _cell(r.row_label),
                 r.seat_number or "", r.code, "yes" if r.checked_in_at else "no",
                 r.checked_in_at.isoformat() if r.checked_in_at else "", _cell(r.attendee_name),
                 *(_cell(q.shown(r.answers.get(str(q.id)))) for q in questions))
                for r in rows
            )


INVOICE_HEADER = ("document", "kind", "issued_at", "order", "billing_name", "billing_address", "corrects",
                  "tax_rate_percent", "net", "tax", "gross", "currency")

# One line per document and tax rate, by series and number; credit notes negative, as booked.
_INVOICES = text(
    "SELECT d.series, d.number, d.kind, d.issued_at, d.order_id, o.billing_name, o.billing_address,"
    " c.series AS c_series, c.number AS c_number, (l->>'rate_bp')::int AS rate_bp, (l->>'net')::int AS net,"
    " (l->>'tax')::int AS tax, (l->>'gross')::int AS gross, d.currency"
    " FROM invoices d JOIN orders o ON o.id = d.order_id LEFT JOIN invoices c ON c.id = d.credits_invoice_id"
    " CROSS JOIN LATERAL jsonb_array_elements(d.lines) AS l"
    " WHERE d.event_id = :e ORDER BY d.series, d.number, rate_bp"
)


def invoice_csv(engine: Engine, event_id: int, batch: int = 2000) -> Iterator[str]:
    """The event's invoices and credit notes for the books, in chunks, on a connection of its own."""
    yield _csv([INVOICE_HEADER])
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(_INVOICES, {"e": event_id})
        for rows in result.partitions(batch):
            yield _csv(
                (document_label(r.series, r.number), r.kind, r.issued_at.isoformat(), r.order_id,
                 _cell(r.billing_name), _cell(r.billing_address),
                 document_label(r.c_series, r.c_number) if r.c_series else "", f"{r.rate_bp / 100:g}",
                 *(f"{(-1 if r.kind == 'credit_note' else 1) * v / 100:.2f}" for v in (r.net, r.tax, r.gross)),
                 r.currency)
                for r in rows
            )
