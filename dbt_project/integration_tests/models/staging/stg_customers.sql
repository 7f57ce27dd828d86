select
    customer_id,
    email,
    country,
    created_at
from {{ source('marketing', 'customers') }}
