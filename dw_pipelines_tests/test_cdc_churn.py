"""Randomized concurrent churn on the source while CDC runs: afterwards the warehouse equals it.

Four writers commit (or roll back) random transactions of inserts, updates, deletes, primary-key
updates and large TOASTed values, over two tables, while CDC runs start, snapshot and apply
over and over. Then the row sets are compared exactly, values included.
"""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest

from dw_pipelines_tests.conftest import query, run_cdc, run_sql, warehouse_rows

pytestmark = pytest.mark.usefixtures("logical_wal")

KEYS = 400
STREAMS = [{"object": "accounts"}, {"object": "orders", "deletes": "soft"}]


def writer(url: str, seed: int, stop: threading.Event, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    try:
        with psycopg.connect(url) as conn:
            while not stop.is_set():
                try:
                    with conn.transaction():
                        for _ in range(rng.randint(1, 6)):
                            _random_change(conn, rng)
                        if rng.random() < 0.1:
                            raise _Rollback
                except _Rollback:
                    pass
                except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
                    pass  # two writers collided on a key: that transaction rolled back
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)


class _Rollback(Exception):
    pass


def _random_change(conn: psycopg.Connection, rng: random.Random) -> None:
    key = rng.randint(1, KEYS)
    kind = rng.choice(["insert", "insert", "update", "update", "delete", "move", "toast", "order"])
    if kind == "insert":
        conn.execute(
            "INSERT INTO accounts (id, name, balance, notes) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            (key, f"acct {key}", rng.randint(0, 10**6) / 100, "n"),
        )
    elif kind == "update":
        conn.execute("UPDATE accounts SET balance = balance + 1.01 WHERE id = %s", (key,))
    elif kind == "delete":
        conn.execute("DELETE FROM accounts WHERE id = %s", (key,))
    elif kind == "move":
        conn.execute(
            "UPDATE accounts SET id = %s WHERE id = %s AND NOT EXISTS"
            " (SELECT 1 FROM accounts WHERE id = %s)",
            (key + KEYS, key, key + KEYS),
        )
    elif kind == "toast":
        big = "".join(rng.choice("0123456789abcdef") for _ in range(6000))
        conn.execute("UPDATE accounts SET notes = %s WHERE id = %s", (big, key))
    else:
        conn.execute(
            "INSERT INTO orders (account_id, amount) VALUES (%s, %s)", (key, rng.randint(1, 999))
        )
        conn.execute(
            "DELETE FROM orders WHERE id = (SELECT min(id) FROM orders) AND random() < 0.3"
        )


def setup_tables(url: str) -> None:
    run_sql(
        url,
        "CREATE TABLE accounts (id int PRIMARY KEY, name text, balance numeric(14,2), notes text)",
        "CREATE TABLE orders (id bigserial PRIMARY KEY, account_id int, amount int)",
        f"INSERT INTO accounts SELECT g, 'acct ' || g, g, 'n' FROM generate_series(1, {KEYS // 2}) g",
    )


def assert_mirrors(source_url: str, warehouse_url: str) -> None:
    accounts = "SELECT id, name, balance, md5(notes) FROM {} ORDER BY id"
    assert warehouse_rows(warehouse_url, accounts.format("src.accounts")) == query(
        source_url, accounts.format("accounts")
    )
    orders = "SELECT id, account_id, amount FROM {} ORDER BY id"
    assert warehouse_rows(
        warehouse_url, orders.format("src.orders WHERE _dw_deleted_at IS NULL")
    ) == query(source_url, orders.format("orders"))


@pytest.mark.parametrize("seed", [1, 2])
def test_random_concurrent_churn_is_mirrored_exactly(
    pg_source_url, warehouse_url, seed: int
) -> None:
    setup_tables(pg_source_url)
    errors: list[BaseException] = []
    stop = threading.Event()
    writers = [
        threading.Thread(target=writer, args=(pg_source_url, seed * 10 + i, stop, errors))
        for i in range(4)
    ]
    for thread in writers:
        thread.start()
    # The first run snapshots while the writers are busy: the hand-off is under load too.
    transactions = 0
    for _ in range(4):
        result = run_cdc(
            pg_source_url, warehouse_url, *STREAMS, batch_changes=50, commit_interval_s=0.1
        )
        transactions += result.transactions
        time.sleep(0.2)
    stop.set()
    for thread in writers:
        thread.join()
    assert not errors, errors
    run_cdc(pg_source_url, warehouse_url, *STREAMS)

    assert transactions > 100  # the runs really applied changes made while they ran
    assert_mirrors(pg_source_url, warehouse_url)
