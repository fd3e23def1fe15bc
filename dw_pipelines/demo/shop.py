"""A small, realistic online shop as an operational SQLite database, for the demo.

SQLite stores NUMERIC(12, 2) values as REAL; amounts here have two decimals and stay far below
2**53 cents, so SQLAlchemy reads them back as exact Decimals with two places.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Eva", "Farah", "Goran", "Hana", "Ivo", "Júlia", "Kofi",
         "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Yuki"]  # fmt: skip
LAST = ["Almeida", "Brandt", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Horvat", "Ivanova",
        "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Silva"]  # fmt: skip
PLACES = [("DE", "Berlin"), ("DE", "Hamburg"), ("FR", "Paris"), ("FR", "Lyon"), ("ES", "Madrid"),
          ("PT", "Porto"), ("NL", "Utrecht"), ("IT", "Milan"), ("PL", "Kraków"), ("SE", "Malmö")]  # fmt: skip
CATEGORIES = {
    "coffee": ["Espresso beans", "Filter roast", "Decaf blend", "Single origin Ethiopia"],
    "equipment": ["Hand grinder", "Pour-over kettle", "Moka pot", "Milk frother", "Scale"],
    "tea": ["Sencha", "Earl Grey", "Rooibos", "Chai blend"],
    "merch": ["Enamel mug", "Tote bag", "Barista apron"],
}
STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled"]

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, email VARCHAR(200) NOT NULL UNIQUE, full_name VARCHAR(200) NOT NULL,
    country CHAR(2) NOT NULL, city VARCHAR(100) NOT NULL, is_active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE products (
    id INTEGER PRIMARY KEY, sku VARCHAR(32) NOT NULL UNIQUE, name VARCHAR(200) NOT NULL,
    category VARCHAR(50) NOT NULL, unit_price NUMERIC(12, 2) NOT NULL, is_active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
    status VARCHAR(20) NOT NULL, currency CHAR(3) NOT NULL, total_amount NUMERIC(12, 2) NOT NULL,
    ordered_at DATETIME NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
    unit_price NUMERIC(12, 2) NOT NULL, discount NUMERIC(5, 2) NOT NULL,
    created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE order_events (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
    status VARCHAR(20) NOT NULL, occurred_at DATETIME NOT NULL);
CREATE INDEX customers_updated_at ON customers (updated_at);
CREATE INDEX products_updated_at ON products (updated_at);
CREATE INDEX orders_updated_at ON orders (updated_at);
CREATE INDEX order_items_updated_at ON order_items (updated_at);
CREATE INDEX order_events_occurred_at ON order_events (occurred_at);
"""


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


def build(path: str | Path, *, seed: int = 7, now: datetime | None = None) -> dict[str, int]:
    """Create the shop from scratch (an existing file is replaced); returns rows per table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    start = now - timedelta(days=180)

    def moment(after: datetime) -> datetime:
        return after + timedelta(seconds=rng.uniform(0, max(1.0, (now - after).total_seconds())))

    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        customers = []
        for cid in range(1, 501):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            country, city = rng.choice(PLACES)
            created = moment(start)
            customers.append((cid, f"{first}.{last}.{cid}@example.com".lower(), f"{first} {last}",
                              country, city, rng.random() > 0.05, _ts(created), _ts(moment(created))))  # fmt: skip
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", customers)

        products, prices = [], {}
        for pid in range(1, 121):
            category = rng.choice(list(CATEGORIES))
            price = Decimal(rng.randint(350, 18900)) / 100
            prices[pid] = price
            created = moment(start)
            products.append((pid, f"SKU-{pid:05d}", f"{rng.choice(CATEGORIES[category])} #{pid}",
                             category, _money(price), rng.random() > 0.1, _ts(created), _ts(created)))  # fmt: skip
        db.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?)", products)

        item_id = 0
        for oid in range(1, 2001):
            ordered = moment(start)
            item_id = _insert_order(db, rng, oid, item_id, rng.randint(1, 500), ordered, prices,
                                    updated=moment(ordered), status=rng.choice(STATUSES))  # fmt: skip
    return _counts(path)


def _insert_order(
    db: sqlite3.Connection,
    rng: random.Random,
    oid: int,
    item_id: int,
    customer_id: int,
    ordered: datetime,
    prices: dict[int, Decimal],
    *,
    updated: datetime,
    status: str,
) -> int:
    total = Decimal(0)
    items = []
    for _ in range(rng.choice([1, 1, 2, 2, 3, 4, 5])):
        item_id += 1
        pid = rng.choice(list(prices))
        quantity = rng.randint(1, 4)
        discount = rng.choice([Decimal("0.00"), Decimal("0.00"), Decimal("5.00"), Decimal("10.00")])
        total += prices[pid] * quantity * (100 - discount) / 100
        items.append((item_id, oid, pid, quantity, _money(prices[pid]), _money(discount),
                      _ts(ordered), _ts(ordered)))  # fmt: skip
    db.execute(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (oid, customer_id, status, "EUR", _money(total), _ts(ordered), _ts(ordered), _ts(updated)),
    )
    db.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?, ?, ?, ?)", items)
    _record_event(db, oid, "pending", ordered)
    if status != "pending":
        _record_event(db, oid, status, updated)
    return item_id


def _record_event(db: sqlite3.Connection, oid: int, status: str, at: datetime) -> None:
    """The order's status log (append-only, one row per change): the demo's partitioned stream."""
    db.execute(
        "INSERT INTO order_events (order_id, status, occurred_at) VALUES (?, ?, ?)",
        (oid, status, _ts(at)),
    )


def churn(
    path: str | Path, *, seed: int | None = None, now: datetime | None = None
) -> dict[str, int]:
    """A day of business on an existing shop: new orders, status changes, edited customers."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    with sqlite3.connect(path) as db:
        latest = db.execute(
            "SELECT max(m) FROM (SELECT max(updated_at) m FROM orders UNION ALL"
            " SELECT max(updated_at) FROM customers UNION ALL SELECT max(updated_at) FROM order_items)"
        ).fetchone()[0]
        floor = datetime.fromisoformat(latest).replace(tzinfo=UTC) + timedelta(microseconds=1)
        now = max(now, floor)
        prices = {
            pid: Decimal(str(price)).quantize(Decimal("0.01"))
            for pid, price in db.execute("SELECT id, unit_price FROM products")
        }
        max_order, max_item, max_customer = db.execute(
            "SELECT (SELECT max(id) FROM orders), (SELECT max(id) FROM order_items),"
            " (SELECT max(id) FROM customers)"
        ).fetchone()
        new_orders = rng.randint(40, 60)
        item_id = max_item
        for oid in range(max_order + 1, max_order + 1 + new_orders):
            item_id = _insert_order(db, rng, oid, item_id, rng.randint(1, max_customer), now,
                                    prices, updated=now, status="pending")  # fmt: skip
        open_orders = [
            oid
            for (oid,) in db.execute(
                "SELECT id FROM orders WHERE status IN ('pending', 'paid', 'shipped') AND id <= ?",
                (max_order,),
            )
        ]
        moved = rng.sample(open_orders, min(len(open_orders), max(1, max_order // 50)))
        for oid in moved:
            (status,) = db.execute("SELECT status FROM orders WHERE id = ?", (oid,)).fetchone()
            following = STATUSES[min(STATUSES.index(status) + 1, 3)]
            db.execute(
                "UPDATE orders SET status = ?, updated_at = ? WHERE id = ?",
                (following, _ts(now), oid),
            )
            _record_event(db, oid, following, now)
        edited = rng.sample(range(1, max_customer + 1), 5)
        for cid in edited:
            country, city = rng.choice(PLACES)
            db.execute(
                "UPDATE customers SET country = ?, city = ?, updated_at = ? WHERE id = ?",
                (country, city, _ts(now), cid),
            )
    return {
        "orders_inserted": new_orders,
        "order_items_inserted": item_id - max_item,
        "orders_updated": len(moved),
        "order_events_inserted": new_orders + len(moved),
        "customers_updated": len(edited),
    }


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("customers", "products", "orders", "order_items", "order_events")
        }
