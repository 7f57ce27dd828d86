select
    event_id,
    customer_id,
    page,
    event_ts
from {{ source('marketing', 'web_events') }}
