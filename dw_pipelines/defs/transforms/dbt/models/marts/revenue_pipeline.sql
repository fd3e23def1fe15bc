-- Salesforce deals by stage and close month: how many, how much, how much weighted by their
-- probability, and the month's win rate (won / closed deals closing that month; null when none
-- has closed), repeated on each stage row of the month so any row reads on its own.
with opportunities as (
    select
        *,
        cast({{ dbt.date_trunc('month', 'close_date') }} as date) as close_month
    from {{ ref('stg_salesforce__opportunity') }}
),

by_stage as (
    select
        stage,
        close_month,
        count(*) as opportunity_count,
        sum(amount) as amount,
        sum(amount * probability_pct / 100) as weighted_amount
    from opportunities
    group by stage, close_month
),

by_month as (
    select
        close_month,
        sum(case when is_won then 1 else 0 end) as won_count,
        sum(case when is_closed then 1 else 0 end) as closed_count
    from opportunities
    group by close_month
)

select
    s.stage,
    s.close_month,
    s.opportunity_count,
    cast(s.amount as {{ decimal_type(18, 2) }}) as amount,
    cast(s.weighted_amount as {{ decimal_type(18, 2) }}) as weighted_amount,
    case
        when m.closed_count > 0
            then cast(
                cast(m.won_count as {{ decimal_type(18, 4) }}) / m.closed_count
                as {{ decimal_type(5, 4) }}
            )
    end as win_rate
from by_stage as s
inner join by_month as m on m.close_month = s.close_month
