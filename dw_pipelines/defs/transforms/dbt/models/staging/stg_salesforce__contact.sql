-- One row per live contact: rows the CRM deleted (kept by the sync with `_dw_deleted_at`) are left out.
select
    {{ adapter.quote('Id') }} as contact_id,
    {{ adapter.quote('AccountId') }} as account_id,
    {{ adapter.quote('FirstName') }} as first_name,
    {{ adapter.quote('LastName') }} as last_name,
    lower({{ adapter.quote('Email') }}) as email,
    {{ adapter.quote('HasOptedOutOfEmail') }} as has_opted_out_of_email,
    {{ adapter.quote('CreatedDate') }} as created_at,
    {{ adapter.quote('LastModifiedDate') }} as updated_at
from {{ source('salesforce', 'contact') }}
where _dw_deleted_at is null and not {{ adapter.quote('IsDeleted') }}
