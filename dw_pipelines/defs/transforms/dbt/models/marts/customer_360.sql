-- One row per shop customer: what they bought, paid and returned, and the CRM account they belong to.
--
-- Matching rule: a customer belongs to the Salesforce account holding a live contact with the
-- same email address (compared lower-case). When several do, the account whose matching
-- contact was created first wins (then the lowest contact id), so each customer has at most one.
with orders as (
    select * from {{ ref('stg_demo_shop__orders') }}
    where status <> 'cancelled'
),

order_totals as (
    select
        customer_id,
        count(*) as order_count,
        sum(total_amount) as lifetime_order_value,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from orders
    group by customer_id
),

returns as (
    select
        o.customer_id,
        count(*) as returned_item_count,
        sum(r.refund_amount) as refunded_amount
    from {{ ref('stg_partner_drops__returns') }} as r
    inner join {{ ref('stg_demo_shop__orders') }} as o on o.order_id = r.order_id
    group by o.customer_id
),

payments as (
    select
        customer_id,
        sum(case when status = 'succeeded' then 1 else 0 end) as payment_count,
        sum(case when status = 'succeeded' then amount - amount_refunded else 0 end) as paid_amount,
        sum(case when status = 'failed' then 1 else 0 end) as failed_payment_count,
        max(case when status = 'succeeded' then created_at end) as last_paid_at
    from {{ ref('stg_stripe__charges') }}
    group by customer_id
),

account_matches as (
    select
        c.customer_id,
        k.account_id,
        row_number() over (
            partition by c.customer_id order by k.created_at, k.contact_id
        ) as match_rank
    from {{ ref('stg_demo_shop__customers') }} as c
    inner join {{ ref('stg_salesforce__contact') }} as k on k.email = c.email
    where k.account_id is not null
),

open_opportunities as (
    select
        account_id,
        count(*) as open_opportunity_count,
        sum(amount) as open_opportunity_amount
    from {{ ref('stg_salesforce__opportunity') }}
    where not is_closed
    group by account_id
)

select
    c.customer_id,
    c.email,
    c.full_name,
    c.country_code,
    c.city,
    c.is_active,
    a.account_id,
    a.account_name,
    coalesce(t.order_count, 0) as order_count,
    coalesce(t.lifetime_order_value, 0) as lifetime_order_value,
    t.first_order_at,
    t.last_order_at,
    coalesce(r.returned_item_count, 0) as returned_item_count,
    coalesce(r.refunded_amount, 0) as refunded_amount,
    coalesce(y.payment_count, 0) as payment_count,
    coalesce(y.paid_amount, 0) as paid_amount,
    coalesce(y.failed_payment_count, 0) as failed_payment_count,
    y.last_paid_at,
    coalesce(p.open_opportunity_count, 0) as open_opportunity_count,
    coalesce(p.open_opportunity_amount, 0) as open_opportunity_amount
from {{ ref('stg_demo_shop__customers') }} as c
left join order_totals as t on t.customer_id = c.customer_id
left join returns as r on r.customer_id = c.customer_id
left join payments as y on y.customer_id = c.customer_id
left join account_matches as m on m.customer_id = c.customer_id and m.match_rank = 1
left join {{ ref('stg_salesforce__account') }} as a on a.account_id = m.account_id
left join open_opportunities as p on p.account_id = a.account_id
