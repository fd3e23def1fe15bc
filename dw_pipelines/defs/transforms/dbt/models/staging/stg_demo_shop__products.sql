-- One row per product in the catalog.
with latest as (
    {{ latest_per_key(source('demo_shop', 'products'), 'id', 'updated_at desc') }}
)

select
    id as product_id,
    sku,
    name as product_name,
    category,
    unit_price,
    is_active,
    created_at,
    updated_at
from latest
