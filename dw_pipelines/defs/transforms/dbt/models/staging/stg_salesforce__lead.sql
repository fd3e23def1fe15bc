-- One row per live lead.
select
    {{ adapter.quote('Id') }} as lead_id,
    {{ adapter.quote('FirstName') }} as first_name,
    {{ adapter.quote('LastName') }} as last_name,
    {{ adapter.quote('Company') }} as company,
    {{ adapter.quote('Status') }} as status,
    {{ adapter.quote('LeadSource') }} as lead_source,
    lower({{ adapter.quote('Email') }}) as email,
    {{ adapter.quote('IsConverted') }} as is_converted,
    {{ adapter.quote('CreatedDate') }} as created_at,
    {{ adapter.quote('LastModifiedDate') }} as updated_at
from {{ source('salesforce', 'lead') }}
where not {{ adapter.quote('IsDeleted') }}
