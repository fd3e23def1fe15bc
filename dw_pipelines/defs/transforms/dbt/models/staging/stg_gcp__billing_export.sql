-- One row per GCP Cloud Billing export line (detailed usage cost export). Built only when the
-- project sets the var `gcp_billing_export` (the stream gcp/billing_export is declared):
-- without it this model, its source and the mart's GCP branch do not exist at all.
{{ config(enabled=var('gcp_billing_export', false)) }}

select
    billing_account_id,
    {{ json_field('service', 'id') }} as service_id,
    {{ json_field('service', 'description') }} as service,
    {{ json_field('sku', 'id') }} as sku_id,
    {{ json_field('sku', 'description') }} as sku,
    {{ json_field('project', 'id') }} as project_id,
    {{ json_field('location', 'region') }} as region,
    usage_start_time,
    usage_end_time,
    {{ utc_date('usage_start_time') }} as usage_date,
    cast({{ json_field('usage', 'amount') }} as {{ dbt.type_numeric() }}) as usage_amount,
    {{ json_field('usage', 'unit') }} as usage_unit,
    cost,
    -- Credits (sustained-use and committed-use discounts, free tier, promotions) are negative
    -- amounts nested in each line; AWS's CUR has them as lines of their own.
    {{ json_list_sum('credits', 'amount') }} as credits_amount,
    currency,
    cost_type,
    {{ json_field('invoice', 'month') }} as invoice_month,
    export_time,
    labels
from {{ source('gcp', 'billing_export') }}
