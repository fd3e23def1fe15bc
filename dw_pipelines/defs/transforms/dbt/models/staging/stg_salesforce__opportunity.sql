-- One row per live deal with its current stage.
select
    {{ adapter.quote('Id') }} as opportunity_id,
    {{ adapter.quote('AccountId') }} as account_id,
    {{ adapter.quote('Name') }} as opportunity_name,
    {{ adapter.quote('StageName') }} as stage,
    {{ adapter.quote('Amount') }} as amount,
    {{ adapter.quote('Probability') }} as probability_pct,
    {{ adapter.quote('CloseDate') }} as close_date,
    {{ adapter.quote('IsClosed') }} as is_closed,
    {{ adapter.quote('IsWon') }} as is_won,
    {{ adapter.quote('CreatedDate') }} as created_at,
    {{ adapter.quote('LastModifiedDate') }} as updated_at
from {{ source('salesforce', 'opportunity') }}
where not {{ adapter.quote('IsDeleted') }}
