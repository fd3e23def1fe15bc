-- Cloud cost by day, provider, account, service and region. Rebuilt whole on each run: the
-- providers restate a billing period in full, so any day of the month can change. Each
-- provider's staging model adds one `union all` branch with the same columns. Cost is what is
-- paid, credits included: AWS's credit lines are lines of the CUR; GCP's are nested in each
-- line and added to its cost. GCP is unioned where the var `gcp_billing_export` is true.
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
{%- if var('gcp_billing_export', false) %},

gcp as (
    select
        usage_date,
        'gcp' as provider,
        -- Charges of the billing account itself (taxes, support) belong to no project.
        coalesce(project_id, billing_account_id) as account_id,
        service,
        coalesce(region, 'global') as region,
        currency,
        count(*) as line_item_count,
        sum(usage_amount) as usage_amount,
        cast(sum(cost + credits_amount) as {{ dbt.type_numeric() }}) as cost
    from {{ ref('stg_gcp__billing_export') }}
    group by
        usage_date, coalesce(project_id, billing_account_id), service,
        coalesce(region, 'global'), currency
),

costs as (
    select * from aws
    union all
    select * from gcp
)
{%- else %},

costs as (
    select * from aws
)
{%- endif %}

select
    usage_date,
    provider,
    account_id,
    service,
    region,
    currency,
    line_item_count,
    usage_amount,
    cast(cost as decimal(18, 6)) as cost
from costs
