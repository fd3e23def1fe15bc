-- One row per live lead.
select
    "Id" as lead_id,
    "FirstName" as first_name,
    "LastName" as last_name,
    "Company" as company,
    "Status" as status,
    "LeadSource" as lead_source,
    lower("Email") as email,
    "IsConverted" as is_converted,
    "CreatedDate" as created_at,
    "LastModifiedDate" as updated_at
from {{ source('salesforce', 'lead') }}
where not "IsDeleted"
