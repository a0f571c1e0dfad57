"""Tax on ticket prices, in minor units, rounded per line (per ticket) half away from zero.

A tier's tax is inclusive (its price is what the buyer pays, tax inside) or
exclusive (its price is net, and the tax is added on top). The price a buyer
is charged is always the gross: for an exclusive tier, `gross_of` adds the
tax on the net, once, when the organiser sets the price, and that gross is
what holds, orders and tickets carry. So hold and pay stay one number per
ticket and cost nothing more, and the price held is the price paid.

Every document works back from the gross of each ticket with `tax_in`. For a
tax-exclusive ticket this gives back exactly the tax that was added: with
tax t = round(net * r), gross * r / (1 + r) = t - e / (1 + r), where
|e| <= 1/2 is the rounding of t, so it rounds to t again. Totals are sums of
lines, never a rate applied to a sum: charged = sum of gross lines, and
net + tax = gross on every line and every document.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def tax_in(gross: int, rate_bp: int) -> int:
    """The tax inside a gross amount at a rate in basis points (half away from zero, as PostgreSQL's round)."""
    if gross < 0:
        return -tax_in(-gross, rate_bp)
    return (2 * gross * rate_bp + 10000 + rate_bp) // (2 * (10000 + rate_bp))


def tax_on(net: int, rate_bp: int) -> int:
    """The tax on a net amount (half away from zero)."""
    return (2 * net * rate_bp + 10000) // 20000


def gross_of(price: int, rate_bp: int, *, inclusive: bool) -> int:
    """What a ticket priced `price` costs the buyer: the price itself, or the net price plus its tax."""
    return price if inclusive else price + tax_on(price, rate_bp)


def price_entered(gross: int, rate_bp: int, *, inclusive: bool) -> int:
    """The price as the organiser entered it (net for a tax-exclusive tier), from the gross kept."""
    return gross if inclusive else gross - tax_in(gross, rate_bp)


@dataclass(frozen=True)
class Totals:
    net_minor: int
    tax_minor: int
    gross_minor: int


def totals(lines: Iterable[tuple[int, int]]) -> Totals:
    """Net, tax and gross of (rate_bp, gross) lines, the tax rounded per line."""
    gross = tax = 0
    for rate_bp, amount in lines:
        gross += amount
        tax += tax_in(amount, rate_bp)
    return Totals(gross - tax, tax, gross)
