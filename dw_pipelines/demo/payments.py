"""The demo's payments: a Stripe-like API (the dev-services REST fake) charging the shop's orders.

An order is charged when it leaves `pending` (its first `paid`/`shipped`/`delivered` status
event), for its total, by the shop customer who placed it: the charge's `metadata` holds the
shop's customer and order ids and `receipt_email` the customer's email, as a shop integrating
Stripe records them. About one order in twelve has a declined card attempt a minute before.
`prepare` charges what the shop's day of business made chargeable since the last run, so every
run brings new charges for the stream's incremental sync (on `created`). The charges persist in
`$DW_HOME/stripe/charges.json`; the API serves them over HTTPS while a command runs.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHARGED = ("paid", "shipped", "delivered")
DECLINED_ONE_IN = 12


def stripe_dir() -> Path:
    return Path(os.environ.get("DW_HOME", ".dw")) / "stripe"


def charge_orders(shop: Path, data: Path) -> int:
    """Add a charge (and now and then a declined attempt first) for every order of the shop
    that has left `pending` and has no charge yet; returns the number of charges added."""
    charges: list[dict[str, Any]] = json.loads(data.read_text())["charges"] if data.exists() else []
    charged = {c["metadata"]["shop_order_id"] for c in charges}
    with sqlite3.connect(shop) as db:
        due = db.execute(
            "SELECT o.id, o.customer_id, c.email, o.total_amount, o.currency, min(e.occurred_at)"
            " FROM orders o JOIN customers c ON c.id = o.customer_id"
            " JOIN order_events e ON e.order_id = o.id"
            f" WHERE e.status IN ({', '.join('?' * len(CHARGED))})"
            " GROUP BY o.id, o.customer_id, c.email, o.total_amount, o.currency ORDER BY o.id",
            CHARGED,
        ).fetchall()
    added = 0
    for order_id, customer_id, email, total, currency, at in due:
        if str(order_id) in charged:
            continue
        rng = random.Random(order_id)  # the same order gets the same card, whatever the run
        paid_at = datetime.fromisoformat(at).replace(tzinfo=UTC)
        amount = round(total * 100)
        if rng.randrange(DECLINED_ONE_IN) == 0:
            declined = paid_at - timedelta(minutes=1)
            charges.append(_charge(len(charges) + 1, order_id, customer_id, email, amount,
                                   currency, declined, rng, succeeded=False))  # fmt: skip
            added += 1
        charges.append(_charge(len(charges) + 1, order_id, customer_id, email, amount,
                               currency, paid_at, rng, succeeded=True))  # fmt: skip
        added += 1
    data.parent.mkdir(parents=True, exist_ok=True)
    partial = data.with_name(data.name + ".partial")
    partial.write_text(json.dumps({"charges": charges}))
    partial.replace(data)
    return added


def _charge(
    n: int,
    order_id: int,
    customer_id: int,
    email: str,
    amount: int,
    currency: str,
    at: datetime,
    rng: random.Random,
    *,
    succeeded: bool,
) -> dict[str, Any]:
    """A charge as Stripe's API returns it (the fields a payments table reads)."""
    return {
        "id": f"ch_demo{n:010d}",
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": 0,
        "billing_details": {"email": email, "name": None},
        "captured": succeeded,
        "created": int(at.timestamp()),
        "currency": currency.lower(),
        "customer": f"cus_demo{customer_id:06d}",
        "description": f"Order {order_id}",
        "failure_code": None if succeeded else "card_declined",
        "failure_message": None if succeeded else "Your card was declined.",
        "livemode": False,
        "metadata": {"shop_customer_id": str(customer_id), "shop_order_id": str(order_id)},
        "paid": succeeded,
        "payment_method_details": {
            "type": "card",
            "card": {"brand": rng.choice(["visa", "mastercard", "amex"]), "last4": "4242"},
        },
        "receipt_email": email,
        "refunded": False,
        "status": "succeeded" if succeeded else "failed",
    }


@contextmanager
def stripe_api(home: Path) -> Iterator[dict[str, str]]:
    """Serve `home`'s charges on a free port; yield the DW_STRIPE_* variables the YAML names."""
    server = subprocess.Popen(
        [sys.executable, "-m", "dw_pipelines.devservices.rest_fake", "--dir", str(home),
         "--stripe-data", str(home / "charges.json")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise SystemExit("the demo's Stripe API did not start")
        ready = json.loads(line)
        yield {
            "DW_STRIPE_BASE_URL": ready["base_url"],
            "DW_STRIPE_API_KEY": ready["stripe_key"],
            "DW_STRIPE_CA_BUNDLE": ready["ca_bundle"],
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
