select
    message_id,
    email,
    action,
    event_ts
from {{ source('marketing', 'email_engagement') }}
