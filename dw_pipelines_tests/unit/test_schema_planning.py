"""Schema planning: the source's columns against the warehouse's, under each schema policy."""

from __future__ import annotations

import pytest

from dw_pipelines.sync.engine import plan_schema
from dw_pipelines.sync.errors import SchemaDriftError
from dw_pipelines.sync.schema import Column
from dw_pipelines.sync.spec import SchemaPolicy, StreamSpec, SyncMode

ID, NAME = Column("id", "int32"), Column("name", "string")


def spec(policy: SchemaPolicy, mode: SyncMode = SyncMode.INCREMENTAL_MERGE) -> StreamSpec:
    return StreamSpec(
        "src", "public.items", mode, primary_key=("id",), cursor="id", schema_policy=policy
    )


def test_a_new_table_takes_the_source_columns() -> None:
    plan = plan_schema(spec(SchemaPolicy.FREEZE), [ID, NAME], None)

    assert (plan.target, plan.added, plan.altered) == ([ID, NAME], [], [])


def test_add_columns_appends_a_new_source_column_after_the_known_ones() -> None:
    price = Column("price", "decimal", precision=12, scale=2)
    plan = plan_schema(spec(SchemaPolicy.ADD_COLUMNS), [price, ID, NAME], [ID, NAME])

    assert (plan.target, plan.added) == ([ID, NAME, price], [price])


def test_freeze_refuses_a_new_column_naming_it_and_its_type() -> None:
    with pytest.raises(SchemaDriftError, match=r"new column 'price' \(float64\)"):
        plan_schema(spec(SchemaPolicy.FREEZE), [ID, NAME, Column("price", "float64")], [ID, NAME])


def test_add_columns_refuses_a_dropped_column_naming_it() -> None:
    with pytest.raises(SchemaDriftError, match="column 'name' was dropped"):
        plan_schema(spec(SchemaPolicy.ADD_COLUMNS), [ID], [ID, NAME])


def test_add_columns_refuses_a_type_change_naming_both_types() -> None:
    with pytest.raises(SchemaDriftError, match="'id' changed type from int32 to int64"):
        plan_schema(spec(SchemaPolicy.ADD_COLUMNS), [Column("id", "int64"), NAME], [ID, NAME])


def test_evolve_keeps_a_dropped_column_and_alters_a_changed_one_in_place() -> None:
    wider = Column("id", "int64")
    plan = plan_schema(spec(SchemaPolicy.EVOLVE), [wider], [ID, NAME])

    assert (plan.target, plan.added, plan.altered) == ([wider, NAME], [], [wider])


def test_a_full_refresh_takes_the_source_columns_as_they_are() -> None:
    email = Column("email", "string")
    plan = plan_schema(
        spec(SchemaPolicy.ADD_COLUMNS, SyncMode.FULL_REFRESH), [email, ID, NAME], [ID, NAME]
    )

    assert (plan.target, plan.added) == ([email, ID, NAME], [email])


def test_a_refusal_names_the_stream_and_the_source_table() -> None:
    with pytest.raises(SchemaDriftError, match=r"stream 'src\.items': .* 'public\.items'"):
        plan_schema(spec(SchemaPolicy.ADD_COLUMNS), [ID], [ID, NAME])
