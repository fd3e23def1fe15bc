-- One row per shop customer, as the shop holds it now.
with latest as (
    {{ latest_per_key(source('demo_shop', 'customers'), 'id', 'updated_at desc') }}
)

select
    id as customer_id,
    lower(email) as email,
    full_name,
    country as country_code,
    city,
    is_active,
    created_at,
    updated_at
from latest
