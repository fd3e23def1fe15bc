-- One row per live deal with its current stage.
select
    "Id" as opportunity_id,
    "AccountId" as account_id,
    "Name" as opportunity_name,
    "StageName" as stage,
    "Amount" as amount,
    "Probability" as probability_pct,
    "CloseDate" as close_date,
    "IsClosed" as is_closed,
    "IsWon" as is_won,
    "CreatedDate" as created_at,
    "LastModifiedDate" as updated_at
from {{ source('salesforce', 'opportunity') }}
where not "IsDeleted"
