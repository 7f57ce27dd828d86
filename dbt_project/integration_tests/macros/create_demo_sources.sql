{#-
  dbt run-operation create_demo_sources

  (Re)creates the raw marketing tables with a tiny, fixed data set in var consentgate_source_schema
  (default: the target schema) and the consent log consent_events in the target schema (the
  package's default consent relation), so the example builds anywhere in seconds. The layout is the
  one `consentgate demo` writes (raw tables in `raw`, `main.consent_events`), so the example also
  runs on the demo warehouse with --vars '{consentgate_source_schema: raw}'.

  As of 2026-01-10, for ad_targeting (subject = customer_id as text): 1 granted, 2 withdrew,
  3 denied, 4's grant expired on 2026-01-05, 5 has no consent yet (granted 2026-01-20), 6 granted
  but it was recorded only on 2026-01-12, 7 granted (' GRANTED '), 8 granted until 2026-06-30.
  For email_marketing (subject = lower-cased e-mail): ann and cara granted, dan withdrew (events in
  two spellings), eve has an unknown status, bob has none.
-#}
{% macro create_demo_sources() %}
  {%- set schema = var('consentgate_source_schema', none) or target.schema -%}
  {%- set database = consentgate._target_database() -%}  {#- none on Spark (schemas only) -#}
  {%- set tables = {
      'customers': {
          'columns': 'customer_id bigint, email varchar, country varchar, created_at timestamp',
          'rows': [
              "1, 'Ann@Example.com', 'SE', '2025-06-01 09:00:00'",
              "2, 'bob@example.com', 'DE', '2025-06-02 09:00:00'",
              "3, 'cara@example.com', 'FR', '2025-06-03 09:00:00'",
              "4, 'dan@example.com', 'SE', '2025-06-04 09:00:00'",
              "5, 'eve@example.com', 'NL', '2025-06-05 09:00:00'",
              "6, 'finn@example.com', 'DE', '2025-06-06 09:00:00'",
              "7, 'gus@example.com', 'FR', '2025-06-07 09:00:00'",
              "8, 'hal@example.com', 'SE', '2025-06-08 09:00:00'",
          ]},
      'web_events': {
          'columns': 'event_id bigint, customer_id bigint, email varchar, page varchar, event_ts timestamp',
          'rows': [
              "1, 1, 'Ann@Example.com', '/home', '2026-01-02 10:00:00'",
              "2, 1, 'Ann@Example.com', '/shoes', '2026-01-03 10:00:00'",
              "3, 2, 'bob@example.com', '/home', '2026-01-02 11:00:00'",
              "4, 3, 'cara@example.com', '/sale', '2026-01-02 12:00:00'",
              "5, 4, 'dan@example.com', '/home', '2026-01-03 12:00:00'",
              "6, 5, 'eve@example.com', '/shoes', '2026-01-04 12:00:00'",
              "7, 6, 'finn@example.com', '/home', '2026-01-04 13:00:00'",
              "8, 7, 'gus@example.com', '/sale', '2026-01-05 13:00:00'",
              "9, 8, 'hal@example.com', '/home', '2026-01-05 14:00:00'",
              "10, 8, 'hal@example.com', '/sale', '2026-01-06 14:00:00'",
              "11, null, null, '/home', '2026-01-06 15:00:00'",
          ]},
      'email_engagement': {
          'columns': 'message_id bigint, email varchar, action varchar, event_ts timestamp',
          'rows': [
              "1, 'ANN@example.com', 'opened', '2026-01-02 08:00:00'",
              "2, 'ann@example.com', 'clicked', '2026-01-02 08:05:00'",
              "3, 'Cara@Example.com', 'opened', '2026-01-03 08:00:00'",
              "4, 'dan@example.com', 'opened', '2026-01-03 09:00:00'",
              "5, 'eve@example.com', 'clicked', '2026-01-04 09:00:00'",
              "6, 'bob@example.com', 'opened', '2026-01-04 10:00:00'",
              "7, null, 'opened', '2026-01-05 10:00:00'",
          ]},
      'purchases': {
          'columns': 'order_id bigint, customer_id bigint, amount decimal(12,2), ordered_at timestamp',
          'rows': [
              "1, 1, 120.00, '2025-12-10 12:00:00'",
              "2, 1, 35.50, '2026-01-04 12:00:00'",
              "3, 2, 80.00, '2025-12-11 12:00:00'",
              "4, 3, 19.99, '2025-12-12 12:00:00'",
              "5, 7, 250.00, '2025-12-13 12:00:00'",
              "6, 8, 60.00, '2025-12-14 12:00:00'",
              "7, null, 15.00, '2025-12-15 12:00:00'",
          ]},
      'consent_events': {
          'columns': 'subject_id varchar, purpose varchar, status varchar, event_ts timestamp, recorded_at timestamp, expires_at timestamp, source varchar, policy_version varchar',
          'rows': [
              "'1', 'ad_targeting', 'granted', '2025-12-01 00:00:00', null, null, 'banner', 'v1'",
              "'2', 'ad_targeting', 'granted', '2025-12-01 00:00:00', null, null, 'banner', 'v1'",
              "'2', 'ad_targeting', 'withdrawn', '2026-01-03 00:00:00', null, null, 'support_ticket', 'v1'",
              "'3', 'ad_targeting', 'denied', '2025-12-02 00:00:00', null, null, 'banner', 'v1'",
              "'4', 'ad_targeting', 'granted', '2025-11-01 00:00:00', null, '2026-01-05 00:00:00', 'banner', 'v1'",
              "'5', 'ad_targeting', 'granted', '2026-01-20 00:00:00', null, null, 'banner', 'v2'",
              "'6', 'ad_targeting', 'granted', '2026-01-08 00:00:00', '2026-01-12 00:00:00', null, 'import', 'v2'",
              "'7', 'ad_targeting', ' GRANTED ', '2025-12-05 00:00:00', null, null, 'banner', 'v2'",
              "'8', 'ad_targeting', 'granted', '2025-12-05 00:00:00', null, '2026-06-30 00:00:00', 'banner', 'v2'",
              "'Ann@Example.com', 'email_marketing', 'granted', '2025-12-01 00:00:00', null, null, 'newsletter_form', 'v1'",
              "'cara@example.com', 'email_marketing', 'granted', '2025-12-01 00:00:00', null, null, 'newsletter_form', 'v1'",
              "'DAN@example.com', 'email_marketing', 'granted', '2025-12-01 00:00:00', null, null, 'newsletter_form', 'v1'",
              "'dan@example.com', 'email_marketing', 'withdrawn', '2026-01-02 00:00:00', null, null, 'unsubscribe_link', 'v1'",
              "'eve@example.com', 'email_marketing', 'maybe', '2025-12-01 00:00:00', null, null, 'newsletter_form', 'v1'",
          ]},
  } -%}
  {%- do adapter.create_schema(api.Relation.create(database=database, schema=schema)) -%}
  {%- do adapter.create_schema(api.Relation.create(database=database, schema=target.schema)) -%}
  {#- Spark has no length-less varchar: its text type is string. -#}
  {%- set text_type = 'string' if target.type == 'spark' else 'varchar' -%}
  {%- set statements = [] -%}
  {%- for name, table in tables.items() -%}
    {%- set relation = api.Relation.create(database=database,
                                           schema=target.schema if name == 'consent_events' else schema,
                                           identifier=name) -%}
    {%- set values = [] -%}
    {%- for row in table.rows -%}
      {%- do values.append('(' ~ row ~ ')') -%}
    {%- endfor -%}
    {%- do statements.append('drop table if exists ' ~ relation) -%}
    {%- do statements.append('create table ' ~ relation ~ ' (' ~ (table.columns | replace('varchar', text_type)) ~ ')') -%}
    {%- if target.type == 'spark' -%}
      {#- Spark does not store a string literal in a timestamp column: cast each column of the rows. -#}
      {%- set names = [] -%}
      {%- set casts = [] -%}
      {%- for column in table.columns.split(', ') -%}
        {%- set col_name, col_type = column.split(' ', 1) -%}
        {%- do names.append(col_name) -%}
        {%- do casts.append('cast(' ~ col_name ~ ' as ' ~ (col_type | replace('varchar', text_type)) ~ ')') -%}
      {%- endfor -%}
      {%- do statements.append('insert into ' ~ relation ~ ' select ' ~ (casts | join(', ')) ~ ' from values '
                               ~ (values | join(', ')) ~ ' as v(' ~ (names | join(', ')) ~ ')') -%}
    {%- else -%}
      {%- do statements.append('insert into ' ~ relation ~ ' values ' ~ (values | join(', '))) -%}
    {%- endif -%}
  {%- endfor -%}
  {#- run-operation does not commit: run everything in one transaction and commit it. -#}
  {%- for sql in statements -%}
    {%- call statement('create_demo_sources', auto_begin=true) -%}
      {{ sql }}
    {%- endcall -%}
  {%- endfor -%}
  {%- do adapter.commit() -%}
  {%- do log('consentgate demo sources created in ' ~ ((database ~ '.') if database else '') ~ schema, info=true) -%}
{% endmacro %}
