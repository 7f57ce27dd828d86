-- The seed list for a lookalike audience: consented customers ranked by what they spent.
select
    customer_id,
    count(*) as orders,
    sum(amount) as lifetime_value,
    max(ordered_at) as last_order_at
from ({{ consentgate.consented(ref('stg_purchases'), 'customer_id', purpose='ad_targeting') }}) as p
group by customer_id
