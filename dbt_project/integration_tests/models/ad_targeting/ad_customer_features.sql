-- Per-customer features for ad targeting, built incrementally: each run recomputes the customers
-- with new web events. consented() filters what is (re)computed; purge_withdrawn removes the rows
-- of customers who withdrew, were denied or whose grant expired since the last run.
{%- set spark = target.type == 'spark' %}
{% if spark -%}
{#- dbt-spark on parquet has neither delete+insert nor merge: the table is partitioned by a bucket of
    customer_id, and a run recomputes whole buckets (those holding a customer with new web events),
    which insert_overwrite replaces (dynamic partition overwrite); the other buckets stay. The bucket is
    not named consentgate_bucket, which purge_withdrawn reserves for append-only models: the purge
    rewrites the whole table here (docs/spark.md#purge_withdrawn-without-delete). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='insert_overwrite',
    file_format='parquet',
    partition_by=['customer_bucket'],
    post_hook="{{ consentgate.purge_withdrawn('ad_targeting', 'customer_id') }}"
) }}
{%- else -%}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='customer_id',
    post_hook="{{ consentgate.purge_withdrawn('ad_targeting', 'customer_id') }}"
) }}
{%- endif %}
{%- set key = consentgate.subject_bucket('customer_id') if spark else 'customer_id' %}

with events as (
    select * from ({{ consentgate.consented(ref('stg_web_events'), 'customer_id', 'ad_targeting') }}) as e
    {% if is_incremental() %}
    where {{ key }} in (
        select {{ key }} from {{ ref('stg_web_events') }}
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
    {%- if spark %},
    {{ consentgate.subject_bucket('customer_id') }} as customer_bucket
    {%- endif %}
from events
group by customer_id
