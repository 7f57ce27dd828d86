-- E-mail marketing audience: engagement of subscribers who agreed to e-mail marketing. The subject
-- is the e-mail address, compared lower-cased (normalize='lower').
select
    lower(trim(email)) as email,
    count(case when action = 'opened' then 1 end) as opens,
    count(case when action = 'clicked' then 1 end) as clicks,
    max(event_ts) as last_engaged_at
from ({{ consentgate.consented(ref('stg_email_engagement'), 'email', 'email_marketing', normalize='lower') }}) as m
group by lower(trim(email))
