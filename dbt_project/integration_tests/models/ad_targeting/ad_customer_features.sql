-- Per-customer features for ad targeting, built incrementally: each run recomputes the customers
-- with new web events. consented() filters what is (re)computed; purge_withdrawn removes the rows
-- of customers who withdrew, were denied or whose grant expired since the last run.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='customer_id',
    post_hook="{{ consentgate.purge_withdrawn('ad_targeting', 'customer_id') }}"
) }}

with events as (
    select * from ({{ consentgate.consented(ref('stg_web_events'), 'customer_id', 'ad_targeting') }}) as e
    {% if is_incremental() %}
    where customer_id in (
        select customer_id from {{ ref('stg_web_events') }}
        where event_ts > (select coalesce(max(last_seen_at), cast('1970-01-01' as timestamp)) from {{ this }})
    )
    {% endif %}
)

select
    customer_id,
    count(*) as page_views,
    count(distinct page) as distinct_pages,
    min(event_ts) as first_seen_at,
    max(event_ts) as last_seen_at
from events
group by customer_id
