"""Change folding: a batch of row changes reduces to one net change per key, in commit order."""

from __future__ import annotations

from dw_pipelines.sync.cdc.changes import TableChanges
from dw_pipelines.sync.cdc.pgoutput import UNCHANGED


def changes() -> TableChanges:
    return TableChanges(key_positions=[0])  # rows are (id, name, body)


def test_an_insert_then_updates_fold_into_one_upsert_of_the_last_values() -> None:
    c = changes()
    c.upsert(["1", "a", "x"], lsn=10)
    c.upsert(["1", "b", "x"], lsn=20)
    c.upsert(["1", "c", "y"], lsn=30)

    assert list(c.rows) == [("1",)]
    pending = c.rows[("1",)]
    assert (pending.deleted, pending.values, pending.lsn) == (False, ["1", "c", "y"], 30)
    assert c.changes == 3


def test_an_insert_then_a_delete_is_a_delete() -> None:
    c = changes()
    c.upsert(["1", "a", "x"], lsn=10)
    c.delete(("1",), lsn=20)

    pending = c.rows[("1",)]
    assert (pending.deleted, pending.values, pending.lsn) == (True, [], 20)


def test_a_delete_then_an_insert_is_an_upsert() -> None:
    c = changes()
    c.delete(("1",), lsn=10)
    c.upsert(["1", "new", "x"], lsn=20)

    assert c.rows[("1",)].deleted is False
    assert c.rows[("1",)].values == ["1", "new", "x"]


def test_keys_stay_in_the_order_of_their_last_change() -> None:
    c = changes()
    c.upsert(["1", "a", "x"], lsn=10)
    c.upsert(["2", "b", "x"], lsn=20)
    c.upsert(["1", "c", "x"], lsn=30)

    assert list(c.rows) == [("2",), ("1",)]


def test_an_update_of_the_key_deletes_the_old_key_and_upserts_the_new() -> None:
    c = changes()
    c.upsert(["2", "a", "x"], lsn=10, old_key=("1",))

    assert c.rows[("1",)].deleted is True
    assert c.rows[("2",)].values == ["2", "a", "x"]


def test_an_unchanged_toasted_value_is_filled_from_a_prior_change_in_the_batch() -> None:
    c = changes()
    c.upsert(["1", "a", "big"], lsn=10)
    c.upsert(["1", "b", UNCHANGED], lsn=20)

    pending = c.rows[("1",)]
    assert pending.values == ["1", "b", "big"]
    assert pending.fill_from is None


def test_an_unchanged_toasted_value_without_a_prior_change_is_filled_from_the_warehouse_row() -> (
    None
):
    c = changes()
    c.upsert(["1", "b", UNCHANGED], lsn=20)

    pending = c.rows[("1",)]
    assert pending.values == ["1", "b", UNCHANGED]
    assert pending.fill_from == ("1",)


def test_a_key_update_with_an_unchanged_value_fills_it_from_the_old_key() -> None:
    c = changes()
    c.upsert(["2", "b", UNCHANGED], lsn=20, old_key=("1",))

    assert c.rows[("2",)].fill_from == ("1",)
    assert c.rows[("1",)].deleted is True


def test_a_fill_source_survives_a_second_update_of_the_same_row() -> None:
    c = changes()
    c.upsert(["1", "b", UNCHANGED], lsn=20)
    c.upsert(["1", "c", UNCHANGED], lsn=30)

    pending = c.rows[("1",)]
    assert pending.values == ["1", "c", UNCHANGED]
    assert pending.fill_from == ("1",)


def test_a_truncate_voids_every_earlier_change_and_is_remembered() -> None:
    c = changes()
    c.upsert(["1", "a", "x"], lsn=10)
    c.truncate(lsn=20)
    c.upsert(["2", "b", "x"], lsn=30)

    assert list(c.rows) == [("2",)]
    assert c.truncated_lsn == 20


def test_clear_forgets_rows_and_the_truncate_but_keeps_the_change_count() -> None:
    c = changes()
    c.upsert(["1", "a", "x"], lsn=10)
    c.truncate(lsn=20)
    c.clear()

    assert (len(c), c.truncated_lsn, c.changes) == (0, None, 2)


def test_a_composite_key_is_read_from_its_positions() -> None:
    c = TableChanges(key_positions=[2, 0])

    assert c.key(["a", "b", "c"]) == ("c", "a")
