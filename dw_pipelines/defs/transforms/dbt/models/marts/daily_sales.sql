{{
    config(
        materialized='incremental',
        unique_key=['sales_date', 'category'],
        incremental_strategy='merge' if target.type == 'bigquery' else 'delete+insert',
    )
}}
-- Orders and returned items by day and product category. Cancelled orders do not count.
-- Incremental: each run rebuilds the last `daily_sales_lookback_days` days present, where late
-- status changes and returns land; older days keep their rows until a full refresh. (BigQuery
-- has no delete+insert: its merge on the same key leaves the same rows.)
--
-- The partner reports a return per order, not per product: it counts under the category of the
-- order's largest line (by amount, then lowest line id).
with lines as (
    select
        o.order_id,
        o.order_date,
        p.category,
        i.quantity,
        i.line_amount,
        i.order_item_id
    from {{ ref('stg_demo_shop__order_items') }} as i
    inner join {{ ref('stg_demo_shop__orders') }} as o on o.order_id = i.order_id
    inner join {{ ref('stg_demo_shop__products') }} as p on p.product_id = i.product_id
    where o.status <> 'cancelled'
),

sales as (
    select
        order_date as sales_date,
        category,
        count(distinct order_id) as order_count,
        sum(quantity) as items_sold,
        sum(line_amount) as gross_revenue
    from lines
    group by order_date, category
),

order_category as (
    select order_id, category
    from (
        select
            order_id,
            category,
            row_number() over (
                partition by order_id order by line_amount desc, order_item_id
            ) as line_rank
        from lines
    ) as ranked
    where line_rank = 1
),

returned as (
    select
        r.return_date as sales_date,
        coalesce(c.category, 'unknown') as category,
        count(*) as returned_items,
        sum(r.refund_amount) as refunded_amount
    from {{ ref('stg_partner_drops__returns') }} as r
    left join order_category as c on c.order_id = r.order_id
    group by r.return_date, coalesce(c.category, 'unknown')
),

days as (
    select
        coalesce(s.sales_date, r.sales_date) as sales_date,
        coalesce(s.category, r.category) as category,
        coalesce(s.order_count, 0) as order_count,
        coalesce(s.items_sold, 0) as items_sold,
        cast(coalesce(s.gross_revenue, 0) as {{ decimal_type(18, 2) }}) as gross_revenue,
        coalesce(r.returned_items, 0) as returned_items,
        cast(coalesce(r.refunded_amount, 0) as {{ decimal_type(18, 2) }}) as refunded_amount
    from sales as s
    full outer join returned as r on r.sales_date = s.sales_date and r.category = s.category
)

select * from days
{% if is_incremental() %}
where sales_date >= (
    select cast({{ dbt.dateadd('day', -var('daily_sales_lookback_days'), 'max(sales_date)') }} as date)
    from {{ this }}
)
{% endif %}
