"""Issuing an invoice with many already issued: the numbering statement's time, measured on a real PostgreSQL.

    .venv/bin/python -m tests.measure_invoices [--sizes 1000 10000 100000] [--repeat 200]

Starts a throwaway PostgreSQL, sells one order, then for each size fills the
INV series with that many documents (numbers 1..size, the counter row at
size) and times the statement that numbers and issues an invoice
(`invoices.issue_invoice`), `--repeat` times, each in a transaction rolled
back, so every repeat takes the same next number. It prints the median and
the 90th percentile per size: they should not grow with the size.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import text

    from config import TestConfig
    from tests.factories import Factory
    from webapp import create_app, embedded_pg
    from webapp.extensions import db
    from webapp.services.money import invoices

    workdir = Path(tempfile.mkdtemp(prefix="invoice-measure-", dir="/tmp"))
    server = embedded_pg.start(workdir / "data", throwaway=True)
    try:
        url = embedded_pg.create_database(embedded_pg.url_of(server), "invoice_measure", drop_first=True)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url}, config_class=TestConfig)
        with app.app_context():
            upgrade()
            factory = Factory(db.session)
            event = factory.ga_event(capacity=10, title="Invoiced")
            # One invoice issued the usual way; the fill below are credit notes naming it, in the same series.
            first = factory.order(event, billing_name="First Ltd", billing_address="1 Road")
            invoice_id = invoices.invoice_of(db.session, first.id).id
            made = factory.order(event)  # its invoice is the one timed, issued again and again
            # A plain copy of what issuing reads, so no expired ORM row reloads inside the timing.
            order = SimpleNamespace(id=made.id, event_id=event.id, billing_name="Measured Ltd",
                                    total_minor=made.total_minor, currency=made.currency)
            print(f"{'invoices in the series':>24} {'median ms':>10} {'p90 ms':>8}")
            filled = 1
            for size in sorted(args.sizes):
                # In slices of 10,000 (each row's foreign keys checked), under the statement timeout.
                while filled < size:
                    upto = min(size, filled + 10000)
                    db.session.execute(text(
                        "INSERT INTO invoices (event_id, organiser_id, order_id, kind, series, number,"
                        " credits_invoice_id, gross_minor, currency, lines)"
                        " SELECT :e, :g, :o, 'credit_note', 'INV-', n, :i, 100, 'EUR', '[]'"
                        " FROM generate_series(:a, :n) n"),
                        {"e": event.id, "g": event.organiser_id, "o": first.id, "i": invoice_id, "a": filled + 1,
                         "n": upto})
                    db.session.commit()
                    filled = upto
                db.session.execute(text("UPDATE invoice_series SET last_number = :n WHERE series = 'INV-'"),
                                   {"n": size})
                db.session.commit()
                db.session.execute(text("ANALYZE invoices"))
                db.session.commit()
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    invoices.issue_invoice(db.session, order)
                    times.append((time.perf_counter() - started) * 1000)
                    db.session.rollback()
                times.sort()
                print(f"{size:>24,} {statistics.median(times):>10.3f} {times[int(len(times) * 0.9)]:>8.3f}")
            db.session.remove()
            db.engine.dispose()
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
