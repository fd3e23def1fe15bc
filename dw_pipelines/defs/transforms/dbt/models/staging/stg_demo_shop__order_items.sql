-- One row per order line. The stream appends, so a line read twice keeps its newest copy.
with latest as (
    {{ latest_per_key(source('demo_shop', 'order_items'), 'id', 'updated_at desc, _dw_synced_at desc') }}
)

select
    id as order_item_id,
    order_id,
    product_id,
    quantity,
    unit_price,
    discount as discount_pct,
    cast(quantity * unit_price * (100 - discount) / 100 as {{ decimal_type(14, 2) }}) as line_amount,
    created_at,
    updated_at
from latest
