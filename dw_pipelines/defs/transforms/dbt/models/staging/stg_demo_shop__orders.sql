-- One row per order with its latest status.
with latest as (
    {{ latest_per_key(source('demo_shop', 'orders'), 'id', 'updated_at desc') }}
)

select
    id as order_id,
    customer_id,
    status,
    currency,
    total_amount,
    ordered_at,
    cast(ordered_at as date) as order_date,
    created_at,
    updated_at
from latest
