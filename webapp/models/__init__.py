"""Typed SQLAlchemy 2.0 models, one module per area, every name importable from here.

Inventory is one row per sellable unit (`Unit`): a numbered seat or one
general-admission place. A reservation locks only the rows it takes. Every
inventory, hold, order and waiting-list row carries `event_id`, so one
transaction only ever touches one event (ready for sharding by event).

The database enforces what it can: a unit is `held` exactly when it points at
a hold, at most one valid ticket exists per unit, a hold has at most one
order, and a checkout has at most one payment in flight.

The areas: `people` (accounts, API tokens, door staff), `events` (events,
tiers, units, the inventory clock), `codes`, `sales` (holds, payments,
orders, tickets), `waiting` (the waiting list and the waiting room) and
`messaging` (outbox, webhooks, audit log). Importing this package defines
them all, so relationships named by class find their targets.
"""
from webapp.models.attendees import Question as Question
from webapp.models.codes import Code as Code
from webapp.models.codes import CodeKind as CodeKind
from webapp.models.columns import utcnow_sql as utcnow_sql
from webapp.models.events import SEAT_PROPERTIES as SEAT_PROPERTIES
from webapp.models.events import Event as Event
from webapp.models.events import EventStatus as EventStatus
from webapp.models.events import InventoryClock as InventoryClock
from webapp.models.events import Tier as Tier
from webapp.models.events import Unit as Unit
from webapp.models.events import UnitStatus as UnitStatus
from webapp.models.events import place_label as place_label
from webapp.models.events import seat_label as seat_label
from webapp.models.messaging import AuditLog as AuditLog
from webapp.models.messaging import OutboxMessage as OutboxMessage
from webapp.models.messaging import WebhookDelivery as WebhookDelivery
from webapp.models.messaging import WebhookEndpoint as WebhookEndpoint
from webapp.models.money import GatewayRefund as GatewayRefund
from webapp.models.money import Invoice as Invoice
from webapp.models.money import InvoiceKind as InvoiceKind
from webapp.models.money import InvoiceSeries as InvoiceSeries
from webapp.models.money import Refund as Refund
from webapp.models.money import RefundState as RefundState
from webapp.models.money import RefundTicket as RefundTicket
from webapp.models.money import document_label as document_label
from webapp.models.organisers import Organiser as Organiser
from webapp.models.organisers import OrganiserInvitation as OrganiserInvitation
from webapp.models.organisers import OrganiserMember as OrganiserMember
from webapp.models.organisers import Role as Role
from webapp.models.people import ApiToken as ApiToken
from webapp.models.people import User as User
from webapp.models.provider import PaymentDispute as PaymentDispute
from webapp.models.provider import StripeEvent as StripeEvent
from webapp.models.provider import StripeIntent as StripeIntent
from webapp.models.sales import GatewayCharge as GatewayCharge
from webapp.models.sales import Hold as Hold
from webapp.models.sales import HoldKind as HoldKind
from webapp.models.sales import HoldStatus as HoldStatus
from webapp.models.sales import Order as Order
from webapp.models.sales import OrderStatus as OrderStatus
from webapp.models.sales import PaymentAttempt as PaymentAttempt
from webapp.models.sales import PaymentStatus as PaymentStatus
from webapp.models.sales import Ticket as Ticket
from webapp.models.sales import TicketStatus as TicketStatus
from webapp.models.transfers import DoorDuplicate as DoorDuplicate
from webapp.models.transfers import TicketTransfer as TicketTransfer
from webapp.models.waiting import ShopDelay as ShopDelay
from webapp.models.waiting import WaitingRoom as WaitingRoom
from webapp.models.waiting import WaitingRoomEntry as WaitingRoomEntry
from webapp.models.waiting import WaitlistEntry as WaitlistEntry
from webapp.models.waiting import WaitlistStatus as WaitlistStatus
