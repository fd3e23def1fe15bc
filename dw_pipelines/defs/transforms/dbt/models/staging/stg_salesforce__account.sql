-- One row per live Salesforce account; `website_domain` is the bare host of its website.
select
    "Id" as account_id,
    "Name" as account_name,
    "Type" as account_type,
    "Industry" as industry,
    "AnnualRevenue" as annual_revenue,
    "NumberOfEmployees" as employee_count,
    "Website" as website,
    lower(regexp_replace("Website", '^(https?://)?(www\.)?([^/:]+).*$', '\3')) as website_domain,
    "BillingCity" as billing_city,
    "BillingCountry" as billing_country,
    "CreatedDate" as created_at,
    "LastModifiedDate" as updated_at
from {{ source('salesforce', 'account') }}
where not "IsDeleted"
