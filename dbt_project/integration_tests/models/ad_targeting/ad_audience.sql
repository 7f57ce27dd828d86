-- The ad audience: consented customers with their consented web activity.
with customers as (
    select * from ({{ consentgate.consented(ref('stg_customers'), 'customer_id', 'ad_targeting') }}) as c
),

visits as (
    select
        customer_id,
        count(*) as page_views,
        max(event_ts) as last_seen_at
    from ({{ consentgate.consented(ref('stg_web_events'), 'customer_id', 'ad_targeting') }}) as e
    group by customer_id
)

select
    customers.customer_id,
    customers.email,
    customers.country,
    coalesce(visits.page_views, 0) as page_views,
    visits.last_seen_at
from customers
left join visits on visits.customer_id = customers.customer_id
