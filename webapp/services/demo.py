"""Realistic demo data: two organisers; a seated hall, a 44,000-seat stadium, a festival, and a tiny
event that sells out.

The first organiser (the one the migration made) runs the hall, the
stadium and the festival; The Cellar Club runs the tiny gig. Its manager is a viewer of the
first too (staff shared between organisers), its door member checks in, and its box office sells at the door.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import Event, EventStatus, Organiser, User
from webapp.services.admin import codes
from webapp.services.people import accounts, organisers
from webapp.services.selling import events, inventory

DEMO_BUYER = ("buyer@example.com", "demo-buyer-pass", "Dana Buyer")
DEMO_ADMIN = ("admin@example.com", "demo-admin-pass", "Alex Admin")
DEMO_MANAGER = ("manager@example.com", "demo-manager-pass", "Morgan Manager")
DEMO_DOOR = ("door@example.com", "demo-door-pass", "Devi Door")
DEMO_BOX_OFFICE = ("box@example.com", "demo-box-pass", "Bo Box-Office")
CELLAR = ("cellar-club", "The Cellar Club")


def has_data(session: Session) -> bool:
    return session.execute(select(func.count()).select_from(Event)).scalar_one() > 0


def seed(session: Session) -> dict[str, tuple[str, str]]:
    """Create the demo events and accounts. Returns the accounts' credentials."""
    for email, password, name in (DEMO_BUYER, DEMO_ADMIN, DEMO_MANAGER, DEMO_DOOR, DEMO_BOX_OFFICE):
        if session.scalar(select(User).where(User.email == email)) is None:
            accounts.register(session, email=email, password=password, name=name, is_admin=email == DEMO_ADMIN[0])
    first = session.scalar(select(Organiser).order_by(Organiser.id).limit(1))
    if first is None:
        first = organisers.create(session, slug="ticketbooth", name="Ticketbooth", actor_id=None)
    cellar = organisers.by_slug(session, CELLAR[0]) or organisers.create(session, slug=CELLAR[0], name=CELLAR[1],
                                                                         actor_id=None)
    _concert_hall(session, _local_start("Europe/Vienna", days=21, hour=19), first.id)
    _stadium(session, _local_start("Europe/London", days=30, hour=15), first.id)
    _festival(session, _local_start("America/New_York", days=45, hour=12), first.id)
    _tiny_gig(session, _local_start("Europe/London", days=7, hour=20), cellar.id)
    organisers.set_member(session, organiser_id=cellar.id, email=DEMO_MANAGER[0], role="manager")
    organisers.set_member(session, organiser_id=first.id, email=DEMO_MANAGER[0], role="viewer")
    organisers.set_member(session, organiser_id=cellar.id, email=DEMO_DOOR[0], role="door")
    organisers.set_member(session, organiser_id=cellar.id, email=DEMO_BOX_OFFICE[0], role="box_office")
    return {"buyer": DEMO_BUYER[:2], "admin": DEMO_ADMIN[:2], "manager": DEMO_MANAGER[:2], "door": DEMO_DOOR[:2],
            "box office": DEMO_BOX_OFFICE[:2]}


def _local_start(tz: str, *, days: int, hour: int) -> datetime:
    """`hour` o'clock on the venue's clock, `days` from today there."""
    day = datetime.now(timezone.utc).astimezone(ZoneInfo(tz)).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(tz))


def _concert_hall(session: Session, starts_at: datetime, organiser_id: int) -> Event:
    """About 1,000 seats in four sections and three tiers."""
    hall = events.create_event(
        session, organiser_id=organiser_id, title="Vienna Philharmonic — Mahler 5", venue="Grand Concert Hall, Vienna",
        starts_at=starts_at, timezone="Europe/Vienna", status=EventStatus.ON_SALE, hold_minutes=8, per_order_limit=8,
        description="Mahler's Fifth Symphony under the baton of a guest conductor. "
                    "Pick your seats on the map; seats are held for 8 minutes while you pay.",
        image_url=None,
    )
    premium = events.add_seated_tier(session, hall, name="Premium", price_minor=12000, colour="#b45309", sort_order=0)
    standard = events.add_seated_tier(session, hall, name="Standard", price_minor=8500, colour="#2563eb", sort_order=1)
    balcony = events.add_seated_tier(session, hall, name="Balcony", price_minor=4500, colour="#059669", sort_order=2)
    specs = [
        events.SectionSpec("Stalls Left", 12, 12, 0, 0, ((0, 5, premium), (6, 11, standard))),
        events.SectionSpec("Stalls Centre", 14, 20, 14, 0, ((0, 7, premium), (8, 13, standard))),
        events.SectionSpec("Stalls Right", 12, 12, 36, 0, ((0, 5, premium), (6, 11, standard))),
        events.SectionSpec("Balcony", 11, 40, 4, 16, ((0, 10, balcony),), first_row_label="M"),
    ]
    for spec in specs:
        events.generate_section(session, hall, spec)
    # Wheelchair spaces with their companion seats at the back of the stalls' centre block, aisle seats
    # along it, and the balcony's ends behind pillars.
    marks = [("wheelchair", "Stalls Centre", "P", 1, 1), ("wheelchair", "Stalls Centre", "P", 20, 20),
             ("companion", "Stalls Centre", "P", 2, 2), ("companion", "Stalls Centre", "P", 19, 19),
             ("restricted_view", "Balcony", "M", 1, 3), ("restricted_view", "Balcony", "M", 38, 40)]
    marks += [("aisle", "Stalls Centre", row, n, n) for row in events.row_labels(13) for n in (1, 20)]
    for prop, section, row, first, last in marks:
        inventory.set_seat_property(session, hall.id, inventory.SeatRange(section, row, first, last), prop, True)
    return hall


# The stadium's blocks: 25 rows of 40 seats (1,000 seats, a section page of
# about 270 KB), three seat positions apart on the plan.
_BLOCK_ROWS, _BLOCK_SEATS, _GAP = 25, 40, 3
_STADIUM_ACCESS_BLOCKS = ("North 7", "North 8", "South 7", "South 8")


def _stadium(session: Session, starts_at: datetime, organiser_id: int | None = None) -> Event:
    """44,000 seats in 44 blocks round a pitch: it opens on its overview of sections (LARGE_VENUE_SEATS)."""
    final = events.create_event(
        session, organiser_id=organiser_id, title="Cup Final — Rovers v Athletic", venue="National Stadium, London",
        starts_at=starts_at, timezone="Europe/London", status=EventStatus.ON_SALE, hold_minutes=8, per_order_limit=8,
        description="The final, in a 44,000-seat stadium. Choose a stand and a block on the plan, then your seats.",
    )
    cat1 = events.add_seated_tier(session, final, name="Category 1", price_minor=9500, colour="#b45309", sort_order=0)
    cat2 = events.add_seated_tier(session, final, name="Category 2", price_minor=6500, colour="#2563eb", sort_order=1)
    cat3 = events.add_seated_tier(session, final, name="Category 3", price_minor=4000, colour="#059669", sort_order=2)
    step_x, step_y = _BLOCK_SEATS + _GAP, _BLOCK_ROWS + _GAP
    side = ((0, 11, cat1), (12, _BLOCK_ROWS - 1, cat2))  # the long stands: front rows dearer
    end = ((0, _BLOCK_ROWS - 1, cat3),)

    def block(name: str, x: int, y: int, tiers) -> events.SectionSpec:
        return events.SectionSpec(name, _BLOCK_ROWS, _BLOCK_SEATS, x, y, tiers)

    specs = [block(f"North {i + 1}", i * step_x, 0, side) for i in range(14)]
    for j in range(4):
        specs += [block(f"West {2 * j + c + 1}", c * step_x, (j + 1) * step_y, end) for c in range(2)]
        specs += [block(f"East {2 * j + c + 1}", (12 + c) * step_x, (j + 1) * step_y, end) for c in range(2)]
    specs += [block(f"South {i + 1}", i * step_x, 5 * step_y, side) for i in range(14)]
    events.generate_sections(session, final, specs)
    # Wheelchair spaces at both ends of the front row of the four blocks on the halfway line, each with
    # the companion seat beside it, and aisle seats at the ends of those blocks' rows behind them.
    marks: list[tuple[str, str, str, int, int]] = []
    for name in _STADIUM_ACCESS_BLOCKS:
        marks += [("wheelchair", name, "A", 1, 1), ("wheelchair", name, "A", _BLOCK_SEATS, _BLOCK_SEATS),
                  ("companion", name, "A", 2, 2), ("companion", name, "A", _BLOCK_SEATS - 1, _BLOCK_SEATS - 1)]
        marks += [("aisle", name, row, n, n) for row in events.row_labels(_BLOCK_ROWS)[1:] for n in (1, _BLOCK_SEATS)]
    for prop, section, row, first, last in marks:
        inventory.set_seat_property(session, final.id, inventory.SeatRange(section, row, first, last), prop, True)
    return final


def _festival(session: Session, starts_at: datetime, organiser_id: int) -> Event:
    fest = events.create_event(
        session, organiser_id=organiser_id, title="Riverside Summer Festival", venue="Riverside Park, New York",
        starts_at=starts_at, timezone="America/New_York", status=EventStatus.ON_SALE, hold_minutes=10,
        per_order_limit=10,
        description="Three stages, forty acts, one weekend by the river. General admission.",
    )
    events.add_general_tier(session, fest, name="Early Bird Day Pass", price_minor=4900, capacity=1500,
                            colour="#7c3aed", sort_order=0)
    events.add_general_tier(session, fest, name="Day Pass", price_minor=6900, capacity=3000,
                            colour="#2563eb", sort_order=1)
    events.add_general_tier(session, fest, name="Weekend Pass", price_minor=11900, capacity=2000,
                            colour="#0d9488", sort_order=2)
    events.add_general_tier(session, fest, name="VIP Weekend", price_minor=29900, capacity=200,
                            colour="#b45309", sort_order=3)
    presale = events.add_general_tier(session, fest, name="Fan Club Weekend", price_minor=9900, capacity=300,
                                      colour="#db2777", sort_order=4, hidden=True)
    # Codes to try: /events/<id>?access=FANCLUB shows the hidden tier; SUMMER10 on the hold page.
    codes.create_code(session, event_id=fest.id, raw_code="FANCLUB", actor_id=None,
                      spec=codes.CodeSpec(kind="access", tier_ids=(presale.id,)))
    codes.create_code(session, event_id=fest.id, raw_code="SUMMER10", actor_id=None,
                      spec=codes.CodeSpec(kind="discount", percent_off=10, per_buyer_max=1))
    return fest


def _tiny_gig(session: Session, starts_at: datetime, organiser_id: int) -> Event:
    gig = events.create_event(
        session, organiser_id=organiser_id, title="Late Night Jazz at The Cellar", venue="The Cellar Club, London",
        starts_at=starts_at, timezone="Europe/London", status=EventStatus.ON_SALE, hold_minutes=5, per_order_limit=4,
        description="An intimate set in a 20-seat room. It sells out fast.",
    )
    front = events.add_seated_tier(session, gig, name="Front Tables", price_minor=3500, colour="#db2777")
    back = events.add_seated_tier(session, gig, name="Back Row", price_minor=2500, colour="#2563eb", sort_order=1)
    events.generate_section(session, gig, events.SectionSpec("Room", 2, 10, 0, 0, ((0, 0, front), (1, 1, back))))
    return gig
