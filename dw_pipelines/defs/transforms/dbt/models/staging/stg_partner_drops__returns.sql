-- One row per returned item the partner reported; a return delivered again keeps its latest file's row.
with latest as (
    {{ latest_per_key(source('partner_drops', 'returns'), 'return_id', '_dw_source_modified desc, _dw_source_file desc') }}
)

select
    return_id,
    order_id,
    reason,
    refund_amount,
    returned_at,
    {{ utc_date('returned_at') }} as return_date
from latest
