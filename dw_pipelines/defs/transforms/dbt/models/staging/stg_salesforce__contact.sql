-- One row per live contact: rows the CRM deleted (kept by the sync with `_dw_deleted_at`) are left out.
select
    "Id" as contact_id,
    "AccountId" as account_id,
    "FirstName" as first_name,
    "LastName" as last_name,
    lower("Email") as email,
    "HasOptedOutOfEmail" as has_opted_out_of_email,
    "CreatedDate" as created_at,
    "LastModifiedDate" as updated_at
from {{ source('salesforce', 'contact') }}
where _dw_deleted_at is null and not "IsDeleted"
