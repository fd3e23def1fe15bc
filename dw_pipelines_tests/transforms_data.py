"""Small raw tables, shaped as the syncs leave them, whose marts are worked out by hand.

What each row is for: a soft-deleted contact (its customer stays unmatched), a late-updated
order (two rows, the newer one cancelled), an order line appended twice, a return delivered
again with a corrected refund, a restated AWS cost line, and Stripe charges: a declined card
before a payment, a partly refunded payment.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

RAW = """
CREATE SCHEMA demo_shop; CREATE SCHEMA salesforce; CREATE SCHEMA partner_drops; CREATE SCHEMA aws;
CREATE SCHEMA stripe;
CREATE TABLE demo_shop.customers (id BIGINT, email VARCHAR, full_name VARCHAR, country VARCHAR,
    city VARCHAR, is_active BOOLEAN, created_at TIMESTAMP, updated_at TIMESTAMP,
    _dw_synced_at TIMESTAMPTZ);
INSERT INTO demo_shop.customers VALUES
    (1, 'Ada@X.example', 'Ada Almeida', 'PT', 'Porto', true, '2026-10-01', '2026-10-01', now()),
    (2, 'ben@y.example', 'Ben Brandt', 'DE', 'Berlin', true, '2026-10-01', '2026-10-01', now()),
    (3, 'eva@z.example', 'Eva Eriksen', 'SE', 'Malmö', false, '2026-10-01', '2026-10-01', now());
CREATE TABLE demo_shop.products (id BIGINT, sku VARCHAR, name VARCHAR, category VARCHAR,
    unit_price DECIMAL(12,2), is_active BOOLEAN, created_at TIMESTAMP, updated_at TIMESTAMP,
    _dw_synced_at TIMESTAMPTZ);
INSERT INTO demo_shop.products VALUES
    (1, 'SKU-1', 'Filter roast', 'coffee', 10.00, true, '2026-10-01', '2026-10-01', now()),
    (2, 'SKU-2', 'Hand grinder', 'equipment', 50.00, true, '2026-10-01', '2026-10-01', now());
CREATE TABLE demo_shop.orders (id BIGINT, customer_id BIGINT, status VARCHAR, currency VARCHAR,
    total_amount DECIMAL(12,2), ordered_at TIMESTAMP, created_at TIMESTAMP, updated_at TIMESTAMP,
    _dw_synced_at TIMESTAMPTZ);
INSERT INTO demo_shop.orders VALUES
    (10, 1, 'paid', 'EUR', 20.00, '2026-11-01 09:00', '2026-11-01 09:00', '2026-11-01 09:00', now()),
    (11, 1, 'delivered', 'EUR', 50.00, '2026-11-02 10:00', '2026-11-02 10:00', '2026-11-04 08:00', now()),
    (12, 2, 'cancelled', 'EUR', 10.00, '2026-11-02 11:00', '2026-11-02 11:00', '2026-11-02 12:00', now()),
    (13, 2, 'paid', 'EUR', 50.00, '2026-11-02 12:00', '2026-11-02 12:00', '2026-11-02 12:00', now()),
    (13, 2, 'cancelled', 'EUR', 50.00, '2026-11-02 12:00', '2026-11-02 12:00', '2026-11-05 09:00', now());
CREATE TABLE demo_shop.order_items (id BIGINT, order_id BIGINT, product_id BIGINT, quantity BIGINT,
    unit_price DECIMAL(12,2), discount DECIMAL(5,2), created_at TIMESTAMP, updated_at TIMESTAMP,
    _dw_synced_at TIMESTAMPTZ);
INSERT INTO demo_shop.order_items VALUES
    (100, 10, 1, 2, 10.00, 0.00, '2026-11-01 09:00', '2026-11-01 09:00', '2026-11-01 10:00'),
    (100, 10, 1, 2, 10.00, 0.00, '2026-11-01 09:00', '2026-11-01 09:00', '2026-11-01 10:15'),
    (101, 11, 2, 1, 50.00, 0.00, '2026-11-02 10:00', '2026-11-02 10:00', now()),
    (102, 12, 1, 1, 10.00, 0.00, '2026-11-02 11:00', '2026-11-02 11:00', now()),
    (103, 13, 2, 1, 50.00, 0.00, '2026-11-02 12:00', '2026-11-02 12:00', now());
CREATE TABLE partner_drops.returns (return_id VARCHAR, order_id BIGINT, reason VARCHAR,
    refund_amount DECIMAL(10,2), returned_at TIMESTAMPTZ, _dw_source_file VARCHAR,
    _dw_source_modified TIMESTAMPTZ, _dw_synced_at TIMESTAMPTZ);
INSERT INTO partner_drops.returns VALUES
    ('R1', 11, 'damaged', 40.00, '2026-11-03 10:00+00', 'partner/returns/2026-11-03/returns.csv.gz',
     '2026-11-03 23:00+00', now()),
    ('R1', 11, 'damaged', 50.00, '2026-11-03 10:00+00', 'partner/returns/2026-11-04/returns.csv.gz',
     '2026-11-04 23:00+00', now());
CREATE TABLE salesforce.account ("Id" VARCHAR, "IsDeleted" BOOLEAN, "CreatedDate" TIMESTAMPTZ,
    "LastModifiedDate" TIMESTAMPTZ, "Name" VARCHAR, "Type" VARCHAR, "Industry" VARCHAR,
    "AnnualRevenue" DECIMAL(18,0), "NumberOfEmployees" INTEGER, "Website" VARCHAR,
    "BillingCity" VARCHAR, "BillingCountry" VARCHAR, _dw_synced_at TIMESTAMPTZ);
INSERT INTO salesforce.account VALUES
    ('001A', false, '2026-01-01', '2026-01-01', 'Acme', 'Customer - Direct', 'Retail', 1000000, 50,
     'https://www.acme.example/about', 'Porto', 'Portugal', now()),
    ('001B', false, '2026-01-01', '2026-01-01', 'Globex', 'Prospect', 'Finance', 2000000, 90,
     'globex.example', 'Berlin', 'Germany', now());
CREATE TABLE salesforce.contact ("Id" VARCHAR, "IsDeleted" BOOLEAN, "CreatedDate" TIMESTAMPTZ,
    "LastModifiedDate" TIMESTAMPTZ, "AccountId" VARCHAR, "FirstName" VARCHAR, "LastName" VARCHAR,
    "Email" VARCHAR, "HasOptedOutOfEmail" BOOLEAN, _dw_synced_at TIMESTAMPTZ,
    _dw_deleted_at TIMESTAMPTZ);
INSERT INTO salesforce.contact VALUES
    ('003A', false, '2026-02-01', '2026-02-01', '001A', 'Ada', 'Almeida', 'ada@x.example', false,
     now(), NULL),
    ('003B', false, '2026-02-01', '2026-03-01', '001B', 'Ben', 'Brandt', 'ben@y.example', false,
     now(), '2026-03-01');
CREATE TABLE salesforce.opportunity ("Id" VARCHAR, "IsDeleted" BOOLEAN, "CreatedDate" TIMESTAMPTZ,
    "LastModifiedDate" TIMESTAMPTZ, "AccountId" VARCHAR, "Name" VARCHAR, "StageName" VARCHAR,
    "Amount" DECIMAL(18,2), "Probability" DECIMAL(3,0), "CloseDate" DATE, "IsClosed" BOOLEAN,
    "IsWon" BOOLEAN, _dw_synced_at TIMESTAMPTZ);
INSERT INTO salesforce.opportunity VALUES
    ('006A', false, '2026-05-01', '2026-05-01', '001A', 'Acme 1', 'Prospecting', 1000, 10,
     '2026-12-10', false, false, now()),
    ('006B', false, '2026-05-01', '2026-05-01', '001A', 'Acme 2', 'Closed Won', 2000, 100,
     '2026-12-20', true, true, now()),
    ('006C', false, '2026-05-01', '2026-05-01', '001B', 'Globex 1', 'Closed Lost', 500, 0,
     '2026-12-05', true, false, now()),
    ('006D', false, '2026-05-01', '2026-05-01', '001A', 'Acme 3', 'Qualification', 3000, 20,
     '2027-01-15', false, false, now());
CREATE TABLE salesforce.lead ("Id" VARCHAR, "IsDeleted" BOOLEAN, "CreatedDate" TIMESTAMPTZ,
    "LastModifiedDate" TIMESTAMPTZ, "FirstName" VARCHAR, "LastName" VARCHAR, "Company" VARCHAR,
    "Status" VARCHAR, "LeadSource" VARCHAR, "Email" VARCHAR, "IsConverted" BOOLEAN,
    _dw_synced_at TIMESTAMPTZ);
INSERT INTO salesforce.lead VALUES
    ('00QA', false, '2026-06-01', '2026-06-01', 'Uma', 'Ivanova', 'Initech', 'Open', 'Web',
     'uma@initech.example', false, now());
CREATE TABLE stripe.charges (id VARCHAR, created TIMESTAMPTZ, amount BIGINT,
    amount_captured BIGINT, amount_refunded BIGINT, currency VARCHAR, status VARCHAR,
    receipt_email VARCHAR, shop_customer_id BIGINT, shop_order_id BIGINT, metadata JSON,
    _dw_synced_at TIMESTAMPTZ);
INSERT INTO stripe.charges VALUES
    ('ch_1', '2026-11-01 09:04+00', 2000, 0, 0, 'eur', 'failed', 'Ada@X.example', 1, 10,
     '{"shop_customer_id": "1", "shop_order_id": "10"}', now()),
    ('ch_2', '2026-11-01 09:05+00', 2000, 2000, 0, 'eur', 'succeeded', 'Ada@X.example', 1, 10,
     '{"shop_customer_id": "1", "shop_order_id": "10"}', now()),
    ('ch_3', '2026-11-02 10:05+00', 5000, 5000, 1500, 'eur', 'succeeded', 'ada@x.example', 1, 11,
     '{"shop_customer_id": "1", "shop_order_id": "11"}', now()),
    ('ch_4', '2026-11-02 12:01+00', 5000, 0, 0, 'eur', 'failed', 'ben@y.example', 2, 13,
     '{"shop_customer_id": "2", "shop_order_id": "13"}', now());
CREATE TABLE aws.cost_and_usage (identity_line_item_id VARCHAR, identity_time_interval VARCHAR,
    bill_billing_period_start_date TIMESTAMPTZ, bill_payer_account_id VARCHAR,
    line_item_usage_account_id VARCHAR, line_item_line_item_type VARCHAR,
    line_item_usage_start_date TIMESTAMPTZ, line_item_product_code VARCHAR,
    line_item_usage_type VARCHAR, line_item_operation VARCHAR, line_item_resource_id VARCHAR,
    line_item_usage_amount DOUBLE PRECISION, line_item_unblended_cost DOUBLE PRECISION, line_item_currency_code VARCHAR,
    product JSON, _dw_source_file VARCHAR, _dw_source_modified TIMESTAMPTZ,
    _dw_synced_at TIMESTAMPTZ);
INSERT INTO aws.cost_and_usage VALUES
    ('L1', '2026-11-01T00:00:00Z/2026-11-02T00:00:00Z', '2026-11-01 00:00+00', '111', '111', 'Usage',
     '2026-11-01 00:00+00', 'AmazonEC2', 'BoxUsage', 'RunInstances', 'i-1', 10, 1.5, 'USD',
     '{"region": "us-east-1"}', 'aws/cur/a.parquet', '2026-11-02 06:00+00', now()),
    ('L1', '2026-11-01T00:00:00Z/2026-11-02T00:00:00Z', '2026-11-01 00:00+00', '111', '111', 'Usage',
     '2026-11-01 00:00+00', 'AmazonEC2', 'BoxUsage', 'RunInstances', 'i-1', 12, 2.0, 'USD',
     '{"region": "us-east-1"}', 'aws/cur/b.parquet', '2026-11-03 06:00+00', now()),
    ('L2', '2026-11-01T00:00:00Z/2026-11-02T00:00:00Z', '2026-11-01 00:00+00', '111', '111', 'Usage',
     '2026-11-01 00:00+00', 'AmazonEC2', 'BoxUsage', 'RunInstances', 'i-2', 4, 0.5, 'USD',
     '{"region": "us-east-1"}', 'aws/cur/b.parquet', '2026-11-03 06:00+00', now()),
    ('L3', '2026-11-02T00:00:00Z/2026-11-03T00:00:00Z', '2026-11-01 00:00+00', '111', '111', 'Usage',
     '2026-11-02 00:00+00', 'AmazonS3', 'TimedStorage', 'StandardStorage', 'bucket', 100, 0.25,
     'USD', '{"region": "eu-west-1"}', 'aws/cur/b.parquet', '2026-11-03 06:00+00', now());
"""


def write_raw_tables_postgres(url: str) -> None:
    """The same raw tables in a PostgreSQL database (the DDL is common to both warehouses)."""
    import sqlalchemy as sa

    from dw_pipelines.sync.urls import sqlalchemy_url

    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET TimeZone = 'UTC'")
        conn.exec_driver_sql(RAW)
    engine.dispose()


# Every raw table of RAW, as `(source, table)`: the dbt sources the models read.
RAW_TABLES = [
    ("demo_shop", "customers"), ("demo_shop", "products"), ("demo_shop", "orders"),
    ("demo_shop", "order_items"), ("salesforce", "account"), ("salesforce", "contact"),
    ("salesforce", "opportunity"), ("salesforce", "lead"), ("partner_drops", "returns"),
    ("aws", "cost_and_usage"), ("stripe", "charges"),
]  # fmt: skip


def sync_raw_tables(source_url: str, warehouse_url: str) -> None:
    """Full-refresh syncs, through the engine, of the raw tables of a PostgreSQL database
    holding RAW (`write_raw_tables_postgres`) into a warehouse: stream `<schema>.<table>` lands
    where the dbt source `<schema>` reads it. The sync stamps `_dw_synced_at` itself, so the
    fixture's own column is left out (the one appended line read twice is the same row twice)."""
    from dw_pipelines.sync.engine import sync_stream
    from dw_pipelines.sync.sources.sql import SqlSource
    from dw_pipelines.sync.spec import StreamSpec
    from dw_pipelines.sync.warehouses import open_warehouse

    warehouse = open_warehouse(warehouse_url)
    try:
        for schema, table in RAW_TABLES:
            source = SqlSource(source_url, name=schema)
            try:
                spec = StreamSpec(
                    source=schema, object=f"{schema}.{table}", exclude_columns=("_dw_synced_at",)
                )
                sync_stream(spec, source, warehouse)
            finally:
                source.close()
    finally:
        warehouse.close()


def write_raw_tables(path: Path) -> None:
    """Create the fixture's raw schemas and tables in a new DuckDB file."""
    with duckdb.connect(str(path)) as db:
        db.execute("SET TimeZone = 'UTC'")
        db.execute(RAW)
