-- Cloud cost by day, provider, account, service and region. Rebuilt whole on each run: the
-- providers restate a billing period in full, so any day of the month can change. Each
-- provider's staging model adds one `union all` branch with the same columns.
with aws as (
    select
        usage_date,
        'aws' as provider,
        account_id,
        service,
        coalesce(region, 'global') as region,
        currency,
        count(*) as line_item_count,
        sum(usage_amount) as usage_amount,
        sum(unblended_cost) as cost
    from {{ ref('stg_aws__cost_and_usage') }}
    group by usage_date, account_id, service, coalesce(region, 'global'), currency
)

select
    usage_date,
    provider,
    account_id,
    service,
    region,
    currency,
    line_item_count,
    usage_amount,
    cast(cost as {{ decimal_type(18, 6) }}) as cost
from aws
