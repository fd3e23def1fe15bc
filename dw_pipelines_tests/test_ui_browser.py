"""The Dagster UI as a user sees it after `make demo`: the lineage page, an asset's page and the
run's page, opened in headless Chromium (Debian's `chromium`, driven by Playwright, which never
downloads a browser of its own). Each test leaves a screenshot in test-artifacts/ui/.

The UI's production build carries no data-testid attributes: pages are read by role, text and
the few attributes the rendered DOM has (a graph node's `data-tooltip` holds the asset's name).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from dw_pipelines_tests.conftest import missing_in_ci_fails, warehouse_rows
from dw_pipelines_tests.ui_fixtures import ARTIFACTS, DemoUi

pytestmark = pytest.mark.ui

# The asset graph is SVG: nodes are <foreignObject> boxes, edges <path>s from the right side of
# the upstream box to the left side of the downstream one; both read in the graph's coordinates.
DRAWN_GRAPH = """() => {
  const nodes = [];
  for (const box of document.querySelectorAll('svg foreignObject')) {
    const label = box.querySelector('[class*="AssetNode_assetName"] [data-tooltip]');
    if (!label) continue;
    const [x, y, width, height] = ['x', 'y', 'width', 'height'].map(
      (a) => parseFloat(box.getAttribute(a)));
    nodes.push({name: label.getAttribute('data-tooltip'), x, y, width, height});
  }
  const edges = [];
  for (const path of document.querySelectorAll('svg path[marker-end]')) {
    const xy = path.getAttribute('d').match(/-?[0-9.]+/g).map(Number);
    edges.push({start: xy.slice(0, 2), end: xy.slice(-2)});
  }
  return {nodes, edges};
}"""
# How far an edge's end may stop short of a node's side (the arrowhead's room).
EDGE_GAP = 20


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        message = "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
        missing_in_ci_fails(message)
    # A shared machine can be slow to render; a missing element still fails, after a minute.
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, demo_ui: DemoUi, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(base_url=demo_ui.url, viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The UI scrolls inside its panes: a full-page shot would be the viewport anyway.
    page.screenshot(path=ARTIFACTS / f"{request.node.name}.png")
    context.close()


def drawn_edges(graph: dict) -> set[tuple[str, str]]:
    """The (upstream, downstream) asset names the drawn edges connect."""

    def node_at(point: list[float], side: str) -> str | None:
        x, y = point
        for n in graph["nodes"]:
            edge_x = n["x"] + n["width"] if side == "right" else n["x"]
            if abs(edge_x - x) <= EDGE_GAP and n["y"] <= y <= n["y"] + n["height"]:
                return n["name"]
        return None

    return {(node_at(e["start"], "right"), node_at(e["end"], "left")) for e in graph["edges"]}


def table_count(ui: DemoUi, schema: str, table: str) -> int:
    return warehouse_rows(ui.warehouse_url, f'SELECT count(*) FROM "{schema}"."{table}"')[0][0]


def the_run_id(ui: DemoUi) -> str:
    runs = ui.graphql("query { runsOrError { ... on Runs { results { runId jobName } } } }")
    return next(
        r["runId"] for r in runs["runsOrError"]["results"] if r["jobName"] == "all_streams_job"
    )


def test_the_lineage_page_draws_a_raw_stream_through_its_staging_model_to_the_marts(
    page: Page, demo_ui: DemoUi
) -> None:
    selection = '+key:"staging/stg_demo_shop__orders"+'
    page.goto(f"/asset-groups~{quote(selection, safe='')}/")
    expect(page.get_by_text("Global asset lineage", exact=True)).to_be_visible()
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")  # the menu stays open over the graph otherwise
    names = ["orders", "stg_demo_shop__orders", "daily_sales", "customer_360"]
    for name in names:
        node = page.locator(f'svg foreignObject:has([data-tooltip="{name}"])')
        expect(node.get_by_text("Materialized", exact=True)).to_be_visible()
    expect(page.locator("svg path[marker-end]")).to_have_count(3)

    graph = page.evaluate(DRAWN_GRAPH)

    assert sorted(n["name"] for n in graph["nodes"]) == sorted(names)
    assert drawn_edges(graph) == {
        ("orders", "stg_demo_shop__orders"),
        ("stg_demo_shop__orders", "daily_sales"),
        ("stg_demo_shop__orders", "customer_360"),
    }


@pytest.mark.parametrize("asset", [["demo_shop", "orders"], ["marts", "daily_sales"]])
def test_an_asset_page_shows_the_row_count_of_its_last_materialization(
    page: Page, demo_ui: DemoUi, asset: list[str]
) -> None:
    page.goto(f"/assets/{'/'.join(asset)}")

    expect(
        page.get_by_text(f"warehouse.{'.'.join(asset)}", exact=True).filter(visible=True)
    ).to_be_visible()
    row_count = page.get_by_text("Row count", exact=True).locator("xpath=..")
    expect(row_count).to_contain_text(f"{table_count(demo_ui, *asset):,}")


def test_a_stream_s_asset_page_lists_its_sync_counts_in_the_materialization_metadata(
    page: Page, demo_ui: DemoUi
) -> None:
    page.goto("/assets/demo_shop/orders")

    def metadata(label: str) -> Locator:
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=label, exact=True))
        return row.get_by_role("cell").last

    loaded = table_count(demo_ui, "demo_shop", "orders")
    expect(metadata("sync_mode")).to_have_text("incremental_merge")
    expect(metadata("rows_read")).to_have_text(str(loaded))
    expect(metadata("rows_inserted")).to_have_text(str(loaded))
    expect(metadata("rows_updated")).to_have_text("0")
    metadata("rows_inserted").scroll_into_view_if_needed()  # for the screenshot


def test_the_run_page_shows_the_successful_run_and_each_sync_s_counts_in_its_logs(
    page: Page, demo_ui: DemoUi
) -> None:
    run_id = the_run_id(demo_ui)
    page.goto(f"/runs/{run_id}")
    # Every asset of the job materialized once in the demo's successful run.
    stats = "stats { ... on RunStatsSnapshot { materializations } }"
    run = demo_ui.graphql(
        f'query {{ runOrError(runId: "{run_id}") {{ ... on Run {{ {stats} }} }} }}'
    )
    assets = run["runOrError"]["stats"]["materializations"]

    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    expect(page.get_by_role("link", name="all_streams_job")).to_be_visible()
    expect(page.get_by_text(f"{assets} assets", exact=True)).to_be_visible()
    page.get_by_placeholder("Filter…").fill("stream demo_shop.orders synced")
    loaded = table_count(demo_ui, "demo_shop", "orders")
    expect(page.get_by_text(f"rows_read={loaded} rows_inserted={loaded} ")).to_be_visible()
