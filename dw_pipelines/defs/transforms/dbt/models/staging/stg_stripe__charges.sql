-- One row per Stripe charge (a payment attempt), amounts in the currency's major unit.
-- The sync merges on the charge id, so the table already holds one row per charge.
select
    id as charge_id,
    shop_customer_id as customer_id,
    shop_order_id as order_id,
    lower(receipt_email) as email,
    status,
    upper(currency) as currency,
    cast(amount / 100.0 as {{ decimal_type(18, 2) }}) as amount,
    cast(amount_refunded / 100.0 as {{ decimal_type(18, 2) }}) as amount_refunded,
    created as created_at
from {{ source('stripe', 'charges') }}
