-- One row per AWS cost line and usage hour or day, as last delivered (AWS restates a billing
-- period in full; the newest file's line wins).
with latest as (
    {{ latest_per_key(
        source('aws', 'cost_and_usage'),
        'identity_line_item_id, identity_time_interval',
        '_dw_source_modified desc, _dw_source_file desc'
    ) }}
)

select
    identity_line_item_id as line_item_id,
    identity_time_interval as time_interval,
    {{ utc_date('line_item_usage_start_date') }} as usage_date,
    {{ utc_date('bill_billing_period_start_date') }} as billing_period,
    bill_payer_account_id as payer_account_id,
    line_item_usage_account_id as account_id,
    line_item_line_item_type as line_item_type,
    line_item_product_code as service,
    {{ json_text('product', 'region') }} as region,
    line_item_usage_type as usage_type,
    line_item_operation as operation,
    line_item_resource_id as resource_id,
    line_item_usage_amount as usage_amount,
    line_item_unblended_cost as unblended_cost,
    line_item_currency_code as currency
from latest
