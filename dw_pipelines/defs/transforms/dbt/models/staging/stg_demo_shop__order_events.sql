-- One row per order status event. The stream appends (and a partition's backfill may re-read a
-- day), so an event read twice keeps one copy.
with latest as (
    {{ latest_per_key(source('demo_shop', 'order_events'), 'id', '_dw_synced_at desc') }}
)

select
    id as order_event_id,
    order_id,
    status,
    occurred_at
from latest
