-- One row per live Salesforce account; `website_domain` is the bare host of its website.
-- Salesforce's field names are mixed case: quoted, so PostgreSQL does not fold them.
select
    {{ adapter.quote('Id') }} as account_id,
    {{ adapter.quote('Name') }} as account_name,
    {{ adapter.quote('Type') }} as account_type,
    {{ adapter.quote('Industry') }} as industry,
    {{ adapter.quote('AnnualRevenue') }} as annual_revenue,
    {{ adapter.quote('NumberOfEmployees') }} as employee_count,
    {{ adapter.quote('Website') }} as website,
    -- Scheme and `www.` cut off, then everything from the first `/` or `:`; no backslash or
    -- back-reference in the patterns, which each warehouse's string literals read differently.
    lower(regexp_replace(
        regexp_replace({{ adapter.quote('Website') }}, '^(https?://)?(www[.])?', ''), '[/:].*$', ''
    )) as website_domain,
    {{ adapter.quote('BillingCity') }} as billing_city,
    {{ adapter.quote('BillingCountry') }} as billing_country,
    {{ adapter.quote('CreatedDate') }} as created_at,
    {{ adapter.quote('LastModifiedDate') }} as updated_at
from {{ source('salesforce', 'account') }}
where not {{ adapter.quote('IsDeleted') }}
