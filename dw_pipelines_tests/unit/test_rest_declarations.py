"""A REST source's YAML is refused before any request, naming the field at fault; its time
bounds reach the API floored, never rounded up."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from dw_pipelines.components import StreamCatalog
from dw_pipelines.sync.sources.rest.source import bound_text

VALID = {
    "rest": """
      base_url: https://api.example.com
      auth: {type: bearer, token_env: T_TOKEN}
      endpoints:
        things:
          path: /v1/things
          records: data
          paginator: {type: cursor}""",
    "stream": "{source: api, object: things}",
}


def catalog(rest: str = VALID["rest"], stream: str = VALID["stream"]) -> str:
    return (
        "sources:\n  api:\n    type: rest\n    rest:"
        + textwrap.indent(textwrap.dedent(rest), "      ")
        + f"\nstreams:\n  - {stream}\n"
    )


def refusal(yaml: str) -> str:
    with pytest.raises(Exception) as failure:
        StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]
    return str(failure.value)


def test_a_valid_declaration_gives_one_asset_per_stream() -> None:
    defs = StreamCatalog.resolve_from_yaml(catalog()).build_defs(None)  # type: ignore[arg-type]
    assert [a.key.path for a in defs.assets] == [["api", "things"]]  # type: ignore[union-attr]
    assert set(defs.resources) == {"source_api"}


def test_a_stream_naming_no_declared_endpoint_is_refused() -> None:
    message = refusal(catalog(stream="{source: api, object: thing}"))
    assert "field 'object'" in message and "no endpoint 'thing'" in message
    assert "it has: things" in message


def test_a_source_without_a_base_url_is_refused() -> None:
    rest = VALID["rest"].replace("base_url: https://api.example.com", "headers: {}")
    assert "give base_url or base_url_env" in refusal(catalog(rest))


def test_an_unknown_column_type_is_refused_naming_the_column() -> None:
    message = refusal(catalog(VALID["rest"] + "\n          columns: {amount: money}"))
    assert "rest.endpoints.things.columns.amount" in message and "'money' is not a type" in message


def test_an_unknown_pagination_style_is_refused() -> None:
    message = refusal(catalog(VALID["rest"].replace("type: cursor", "type: scroll")))
    assert "scroll" in message and "paginator" in message


def test_a_secret_written_in_place_of_its_variable_name_is_refused() -> None:
    rest = VALID["rest"].replace("token_env: T_TOKEN", "token: sk_live_abc")
    message = refusal(catalog(rest))
    assert "token" in message and "sk_live_abc" not in message.split("input_value")[0]


def test_a_child_endpoint_needs_a_parent_field_in_its_path() -> None:
    child = "\n        lines: {path: /v1/lines, parent: things}"
    assert "takes a parent field" in refusal(catalog(VALID["rest"] + child))


def test_a_child_endpoint_needs_an_existing_parent() -> None:
    child = "\n        lines: {path: '/v1/things/{parent.id}/lines', parent: nothing}"
    assert "'nothing' is not another endpoint" in refusal(catalog(VALID["rest"] + child))


def test_a_batch_read_needs_a_parent_endpoint() -> None:
    child = "\n        lines: {path: /v1/lines/batch, method: POST, parent_batch: {size: 50}}"
    message = refusal(catalog(VALID["rest"] + child))
    assert "rest.endpoints.lines.parent_batch" in message and "`parent:`" in message


def test_a_batch_read_lists_its_parents_in_a_post_body() -> None:
    child = "\n        lines: {path: /v1/lines/batch, parent: things, parent_batch: {size: 50}}"
    message = refusal(catalog(VALID["rest"] + child))
    assert "rest.endpoints.lines.method" in message and "needs method: POST" in message


def test_a_batch_read_pages_its_results_not_its_answer() -> None:
    child = (
        "\n        lines: {path: /v1/lines/batch, method: POST, parent: things,"
        " parent_batch: {size: 50}, paginator: {type: cursor}}"
    )
    assert "rest.endpoints.lines.paginator" in refusal(catalog(VALID["rest"] + child))


def test_a_batch_read_naming_errors_that_mean_no_records_needs_their_list() -> None:
    child = (
        "\n        lines: {path: /v1/lines/batch, method: POST, parent: things,"
        " parent_batch: {size: 50, no_records: {code: [none_found]}}}"
    )
    message = refusal(catalog(VALID["rest"] + child))
    assert "rest.endpoints.lines.parent_batch.no_records" in message and "give `errors:`" in message


def test_an_incremental_filter_names_where_the_bound_goes() -> None:
    rest = VALID["rest"] + "\n          incremental: {format: unix}"
    assert "give the query `param` or the `body`" in refusal(catalog(rest))


def test_a_body_filter_needs_a_post_endpoint() -> None:
    rest = VALID["rest"] + "\n          incremental: {body: {after: '{lower}'}}"
    assert "needs method: POST" in refusal(catalog(rest))


def test_soft_deletes_are_refused_for_an_endpoint_declaring_no_deletes_listing() -> None:
    stream = "{source: api, object: things, mode: incremental_merge, primary_key: [id], cursor: created, deletes: soft}"
    assert "declares no `deletes:` listing" in refusal(catalog(stream=stream))


DELETES = (
    VALID["rest"]
    + """
          deletes: {endpoint: gone, keys: {id: data.object.id}}
        gone:
          path: /v1/events
          records: data"""
)


def test_a_deletes_listing_without_a_path_for_every_key_column_is_refused() -> None:
    stream = "{source: api, object: things, mode: incremental_merge, primary_key: [id, region], cursor: created}"
    message = refusal(catalog(rest=DELETES, stream=stream))
    assert "field 'primary_key'" in message and "no path for region" in message


CHANGES = (
    VALID["rest"]
    + """
          changes: {endpoint: updates}
        updates:
          path: /v1/events
          records: data"""
)


@pytest.mark.parametrize(
    ("rest", "said"),
    [
        (CHANGES, "endpoint 'things' lists its updates in `changes:`"),
        (DELETES, "endpoint 'things' lists its deletions in `deletes:` (endpoint 'gone')"),
    ],
    ids=["changes", "deletes"],
)
def test_an_append_stream_on_an_endpoint_listing_changes_or_deletions_is_refused(
    rest: str, said: str
) -> None:
    stream = "{source: api, object: things, mode: incremental_append, cursor: created}"
    message = refusal(catalog(rest=rest, stream=stream))
    assert "('api.things'): field 'mode'" in message
    assert said in message
    assert "use mode incremental_merge" in message


def test_a_full_refresh_stream_on_an_endpoint_listing_changes_is_accepted() -> None:
    # A full refresh lists every record as it now is: the changes have nothing to add.
    stream = "{source: api, object: things, primary_key: [id]}"
    defs = StreamCatalog.resolve_from_yaml(catalog(CHANGES, stream)).build_defs(None)  # type: ignore[arg-type]
    assert [a.key.path for a in defs.assets] == [["api", "things"]]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("unix", "1772366400"),
        ("unix_ms", "1772366400999"),
        ("iso", "2026-03-01T12:00:00.999Z"),
    ],
)
def test_a_time_bound_is_floored_in_every_format(fmt: str, expected: str) -> None:
    bound = dt.datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=dt.UTC)
    assert bound_text(bound, fmt) == expected


def test_keyset_paging_without_an_incremental_filter_is_refused() -> None:
    rest = VALID["rest"].replace(
        "paginator: {type: cursor}",
        "paginator: {type: keyset, from_record: properties.hs_lastmodifieddate}",
    )
    message = refusal(catalog(rest=rest))
    assert "rest.endpoints.things.paginator" in message and "incremental" in message


def test_a_changes_listing_naming_no_endpoint_is_refused() -> None:
    rest = VALID["rest"] + "\n          changes: {endpoint: nowhere}"
    message = refusal(catalog(rest))
    assert "rest.endpoints.things.changes.endpoint" in message
    assert "'nowhere' is not another endpoint" in message


STRIPE_STREAMS = [
    "customers",
    "charges",
    "payment_intents",
    "invoices",
    "subscriptions",
    "refunds",
    "balance_transactions",
]
HUBSPOT_STREAMS = ["contacts", "companies", "deals"]
ASSOCIATIONS = ["contact_companies", "deal_companies", "deal_contacts"]


def preset_catalog(preset: str, streams: list[str], extra: str = "", **spec: str) -> str:
    shape = ", ".join(f"{k}: {v}" for k, v in spec.items())
    lines = "".join(f"\n  - {{source: {preset}, object: {s}, {shape}}}" for s in streams)
    return f"sources:\n  {preset}:\n    type: rest\n    rest: {{preset: {preset}{extra}}}\nstreams:{lines}\n"


def test_the_stripe_preset_declares_every_object_as_an_incremental_merge_stream() -> None:
    yaml = preset_catalog(
        "stripe", STRIPE_STREAMS, mode="incremental_merge", primary_key="[id]", cursor="created"
    )
    yaml += "  - {source: stripe, object: invoice_lines, primary_key: [invoice_id, id]}\n"
    defs = StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]
    assert sorted(a.key.path[1] for a in defs.assets) == sorted([*STRIPE_STREAMS, "invoice_lines"])  # type: ignore[union-attr]


def test_the_hubspot_preset_declares_objects_and_their_associations() -> None:
    objects = preset_catalog(
        "hubspot", HUBSPOT_STREAMS, mode="incremental_merge", primary_key="[id]", cursor="updatedAt"
    )
    associations = preset_catalog("hubspot", ASSOCIATIONS, primary_key="[from_id, to_id]")
    yaml = objects + associations.split("streams:", 1)[1]
    defs = StreamCatalog.resolve_from_yaml(yaml).build_defs(None)  # type: ignore[arg-type]
    assert len(defs.assets) == 6  # type: ignore[arg-type]


def test_a_preset_endpoint_override_is_checked_as_a_declaration() -> None:
    extra = ", endpoints: {customers: {paginator: {type: scroll}}}"
    yaml = preset_catalog("stripe", ["customers"], extra)
    message = refusal(yaml)
    assert "scroll" in message and "customers" in message


def test_an_unknown_preset_is_refused() -> None:
    message = refusal(preset_catalog("salesforce", []))
    assert "preset" in message and "stripe" in message


def test_a_preset_reaches_the_resource_expanded_with_the_overrides() -> None:
    from dw_pipelines.kinds.rest import RestKind, RestSourceModel

    source = RestSourceModel.model_validate(
        {"type": "rest", "rest": {"preset": "hubspot", "max_requests": 99}}
    )
    api = RestKind().resource("hubspot", source).model()
    assert api.model_dump() == source.rest.model_dump() and api.max_requests == 99
    assert api.endpoints["contacts"].deletes.endpoint == "contacts_archived"  # type: ignore[union-attr]
    assert api.endpoints["deal_contacts"].parent == "deals"
