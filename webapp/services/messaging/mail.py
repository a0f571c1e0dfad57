"""The messages themselves: what each template needs, rendering, and the MIME message sent.

Every message is a pair of templates in `templates/email/`: `<name>.txt`
(which also sets the subject) and `<name>.html`. `CONTEXTS` says, per
template, how to load what it talks about from the ids stored with the
message, so a message can be rendered when it is queued or later by the
delivery worker. The order confirmation carries the tickets as a PDF, the
event as an `.ics` file and the invoice (if the order has one); a refund's
message carries its credit note; all made when the message is sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import Any, Callable

from flask import current_app
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from webapp.models import (
    Event,
    Hold,
    Invoice,
    Order,
    Organiser,
    OutboxMessage,
    Refund,
    RefundTicket,
    Ticket,
    TicketStatus,
    TicketTransfer,
    User,
    WaitingRoomEntry,
    WaitlistEntry,
)
from webapp.services.errors import NotFound
from webapp.services.messaging import language, links


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "application/pdf"
    data: bytes


def _order(session: Session, order_id: int) -> Order:
    order = session.scalars(
        select(Order).where(Order.id == order_id)
        .options(selectinload(Order.tickets).selectinload(Ticket.unit),
                 selectinload(Order.tickets).selectinload(Ticket.tier))
    ).first()
    if order is None:
        raise NotFound(f"Order {order_id} no longer exists.")
    return order


def _order_context(session: Session, params: dict) -> dict[str, Any]:
    order = _order(session, params["order_id"])
    user = session.get(User, order.user_id)
    return dict(order=order, event=order.event, user=user,
                tickets=[t for t in order.tickets if t.status == TicketStatus.VALID],
                order_url=links.link("account.order_page", order_id=order.id),
                pdf_url=links.link("account.tickets_pdf", order_id=order.id))


def _confirmation_context(session: Session, params: dict) -> dict[str, Any]:
    context = _order_context(session, params)
    user = context["user"]
    if user.email_verified_at is None:
        context["verify_url"] = links.link("auth.verify_email", token=links.verify_token(user))
    # Wallet passes, per ticket, only where the operator configured them.
    from webapp.services.messaging import wallet

    context["wallet_links"] = [
        (t, links.link("account.apple_wallet", ticket_id=t.id) if wallet.apple_configured(current_app.config)
         else None,
         links.link("account.google_wallet", ticket_id=t.id) if wallet.google_configured(current_app.config)
         else None)
        for t in context["tickets"]
        if wallet.apple_configured(current_app.config) or wallet.google_configured(current_app.config)]
    return context


def _cancel_context(session: Session, params: dict) -> dict[str, Any]:
    context = _order_context(session, params)
    order = context["order"]
    context.update(refunded=order.status.value == "refunded",
                   by_buyer=order.cancel_reason == "cancelled by buyer",
                   event_url=links.link("shop.event_page", event_id=order.event_id))
    return context


def _refund_context(session: Session, params: dict) -> dict[str, Any]:
    context = _order_context(session, params)
    refund = session.get(Refund, params["refund_id"])
    if refund is None:
        raise NotFound("The refund no longer exists.")
    context.update(refund=refund, all_void=not context["tickets"],
                   voided=session.scalars(select(Ticket).join(RefundTicket, RefundTicket.ticket_id == Ticket.id)
                                          .where(RefundTicket.refund_id == refund.id)).all(),
                   credit_note=session.scalars(select(Invoice).where(Invoice.refund_id == refund.id)).first())
    return context


def _offer_context(session: Session, params: dict) -> dict[str, Any]:
    hold = session.get(Hold, params["hold_id"])
    entry = session.get(WaitlistEntry, params["entry_id"])
    if hold is None or entry is None:
        raise NotFound("The offer no longer exists.")
    event = hold.event
    return dict(hold=hold, entry=entry, event=event, user=session.get(User, entry.user_id),
                partial=hold.quantity < entry.quantity,
                hold_url=links.link("checkout.hold_page", hold_id=hold.id),
                mine_url=links.link("waitlist.mine"),
                event_url=links.link("shop.event_page", event_id=event.id))


def _transfer_context(session: Session, params: dict) -> dict[str, Any]:
    transfer = session.get(TicketTransfer, params["transfer_id"])
    if transfer is None:
        raise NotFound("The transfer no longer exists.")
    ticket = session.get_one(Ticket, transfer.ticket_id)
    return dict(transfer=transfer, ticket=ticket, event=ticket.order.event,
                sender=session.get_one(User, transfer.from_user_id),
                url=links.link("account.transfer_page", token=params["token"]))


def _token_context(endpoint: str, max_age_key: str) -> Callable[[Session, dict], dict[str, Any]]:
    def build(session: Session, params: dict) -> dict[str, Any]:
        user = session.get(User, params["user_id"])
        if user is None:
            raise NotFound("The account no longer exists.")
        return dict(user=user, url=links.link(endpoint, token=params["token"]),
                    valid_for=valid_for(current_app.config[max_age_key]))
    return build


def _invitation_context(session: Session, params: dict) -> dict[str, Any]:
    organiser = session.get(Organiser, params["organiser_id"])
    if organiser is None:
        raise NotFound("The organiser no longer exists.")
    return dict(organiser=organiser, role=_role_names().get(params["role"], params["role"].replace("_", " ")),
                url=links.link("account.invitation", token=params["token"]),
                valid_for=valid_for(current_app.config["INVITATION_MAX_AGE_SECONDS"], days_from_hours=0))


def _role_names() -> dict[str, str]:
    # Translated when the mail is rendered, in its language.
    return {"owner": _("owner"), "manager": _("manager"), "box_office": _("box office"), "door": _("door"),
            "viewer": _("viewer")}


def valid_for(seconds: float, *, days_from_hours: float = 48) -> str:
    """How long a link works, in words of the current language: "2 hours", "1,5 Stunden", "3 días"."""
    hours = seconds / 3600
    # A fraction takes the plural in English, German and Spanish alike.
    if hours < days_from_hours:
        return ngettext("%(amount)s hour", "%(amount)s hours", int(hours) if hours.is_integer() else 2,
                        amount=format_decimal(hours))
    days = hours / 24
    return ngettext("%(amount)s day", "%(amount)s days", int(days) if days.is_integer() else 2,
                    amount=format_decimal(days))


def _turn_context(session: Session, params: dict) -> dict[str, Any]:
    entry = session.get(WaitingRoomEntry, params["entry_id"])
    if entry is None or entry.pass_until is None:
        raise NotFound("The place in the waiting room no longer exists.")
    event = session.get_one(Event, entry.event_id)
    token = links.turn_token(entry_id=entry.id, event_id=event.id, until=entry.pass_until)
    return dict(event=event, until=entry.pass_until, needs_login=entry.user_id is None,
                url=links.link("shop.waiting_room_turn", event_id=event.id, token=token))


CONTEXTS: dict[str, Callable[[Session, dict], dict[str, Any]]] = {
    "order_confirmation": _confirmation_context,
    "order_cancelled": _cancel_context,
    "event_cancelled": _cancel_context,
    "refund_issued": _refund_context,
    "waitlist_offer": _offer_context,
    "offer_expired": _offer_context,
    "ticket_transfer": _transfer_context,
    "password_reset": _token_context("auth.reset_password_get", "PASSWORD_RESET_MAX_AGE_SECONDS"),
    "verify_email": _token_context("auth.verify_email", "EMAIL_VERIFY_MAX_AGE_SECONDS"),
    "waiting_room_turn": _turn_context,
    "organiser_invitation": _invitation_context,
}


def check_template(name: str) -> None:
    if name not in CONTEXTS:
        raise ValueError(f"No e-mail template called {name!r}.")


def render(session: Session, template: str, params: dict, locale: str | None = None) -> tuple[str, str, str]:
    """Subject, text body and HTML body of one message, in `locale` (None: the current language)."""
    check_template(template)
    with language.speaking(locale):
        return _render(session, template, params)


def _render(session: Session, template: str, params: dict) -> tuple[str, str, str]:
    context = CONTEXTS[template](session, params)
    env = current_app.jinja_env
    text_template = env.get_template(f"email/{template}.txt")
    text_body = text_template.render(context)
    # The template exports `subject` with {% set %}; Jinja makes those attributes at run time.
    subject = " ".join(str(text_template.make_module(context).subject).split())  # type: ignore[attr-defined]
    html_body = env.get_template(f"email/{template}.html").render(context, subject=subject, lang=language.current())
    return subject, text_body, html_body


def render_into(session: Session, message: OutboxMessage) -> None:
    """Fill in a message's subject and bodies, once: a retry sends what the first try rendered."""
    if message.body is not None:
        return
    # Every row `outbox.queue` writes names its template; only rows from before
    # templates have none, and those were stored with their body.
    if message.template is None:
        raise ValueError("An unrendered message without a template.")
    message.subject, message.body, message.html_body = render(session, message.template, message.params,
                                                              message.locale)
    message.subject = message.subject[:200]


def attachments(session: Session, message: OutboxMessage) -> list[Attachment]:
    """The files a message carries, in its language (the PDFs' and the `.ics`'s words)."""
    with language.speaking(message.locale):
        return _attachments(session, message)


def _attachments(session: Session, message: OutboxMessage) -> list[Attachment]:
    from webapp.services.messaging import calendar, invoice_pdf, ticket_pdf

    if message.template == "refund_issued":
        note = session.scalars(select(Invoice).where(Invoice.refund_id == message.params["refund_id"])).first()
        if note is None:
            return []
        order = _order(session, message.params["order_id"])
        return [Attachment(f"credit-note-{note.label}.pdf", "application/pdf",
                           invoice_pdf.invoice_pdf(note, order, credits=session.get(Invoice, note.credits_invoice_id),
                                                   reason=session.get_one(Refund, note.refund_id).reason))]
    if message.template != "order_confirmation":
        return []
    order = _order(session, message.params["order_id"])
    valid = [t for t in order.tickets if t.status == TicketStatus.VALID]
    files = [Attachment(f"event-{order.event_id}.ics", "text/calendar", calendar.event_ics(order.event, order))]
    if valid:
        files.insert(0, Attachment(f"tickets-order-{order.id}.pdf", "application/pdf",
                                   ticket_pdf.order_pdf(order, valid)))
    invoice = session.scalars(select(Invoice).where(Invoice.order_id == order.id, Invoice.kind == "invoice")).first()
    if invoice is not None:
        files.append(Attachment(f"invoice-{invoice.label}.pdf", "application/pdf",
                                invoice_pdf.invoice_pdf(invoice, order)))
    return files


@dataclass(frozen=True)
class Sender:
    """Whose name a message goes out under: the organiser's display name (the address stays the install's
    MAIL_FROM, the one its mail server may send as), and where replies go."""

    name: str | None = None
    reply_to: str | None = None


def sender_of(session: Session, message: OutboxMessage) -> Sender:
    """The sender of a message about an organiser's event (or its invitation): that organiser's, if it set one."""
    organiser_id = (message.params or {}).get("organiser_id") if message.template == "organiser_invitation" else None
    if message.event_id is not None:
        organiser_id = session.scalar(select(Event.organiser_id).where(Event.id == message.event_id))
    if organiser_id is None:
        return Sender()
    row = session.execute(select(Organiser.mail_from_name, Organiser.mail_reply_to)
                          .where(Organiser.id == organiser_id)).first()
    return Sender(row.mail_from_name, row.mail_reply_to) if row else Sender()


def build(message: OutboxMessage, files: list[Attachment], sender: Sender | None = None) -> EmailMessage:
    """The MIME message: text and HTML alternatives, then the attachments."""
    email = EmailMessage()
    _, install_address = parseaddr(current_app.config["MAIL_FROM"])
    if sender is not None and sender.name:
        email["From"] = formataddr((sender.name, install_address))
    else:
        email["From"] = current_app.config["MAIL_FROM"]
    if sender is not None and sender.reply_to:
        email["Reply-To"] = sender.reply_to
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Message-ID"] = message.message_id
    email["Date"] = formatdate(message.created_at.timestamp() if message.created_at else None, localtime=False)
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body or "")
    if message.html_body:
        email.add_alternative(message.html_body, subtype="html")
    for f in files:
        maintype, _, subtype = f.content_type.partition("/")
        params = {"method": "PUBLISH"} if subtype == "calendar" else {}
        email.add_attachment(f.data, maintype=maintype, subtype=subtype, filename=f.filename, params=params)
    return email
