{#-
  SQL expressions for the consent log's columns, keyed by role (subject_id, purpose, status, event_ts,
  recorded_at, expires_at). Timestamps are normalised to naive UTC: a `timestamp with time zone`
  column is read `at time zone 'UTC'`, a date is cast to timestamp, any other type fails the compile
  (as in the Python engine, consentgate.rule.dialects.Dialect.utc_timestamp).
  When executing, the log is introspected and a missing table or column fails the compile (fail closed).
  recorded_at and expires_at may be mapped to none when the log has no such column.
-#}
{% macro _consent_columns(consent_relation, macro_name) %}
  {%- set mapping = consentgate.get_config('consent_columns') -%}
  {%- set required = ['subject_id', 'purpose', 'status', 'event_ts'] -%}
  {%- set optional = ['recorded_at', 'expires_at'] -%}
  {%- set timestamps = ['event_ts', 'recorded_at', 'expires_at'] -%}
  {%- set types = {} -%}
  {%- set exact = {} -%}
  {%- set spellings = {} -%}
  {%- if execute -%}
    {%- set found = adapter.get_columns_in_relation(consent_relation) -%}
    {%- if found | length == 0 -%}
      {{ exceptions.raise_compiler_error(
          macro_name ~ ": consent relation " ~ consent_relation ~ " does not exist or has no columns; "
          ~ "create it or point var consentgate_consent_relation at the consent log") }}
    {%- endif -%}
    {%- for column in found -%}
      {%- do types.update({column.name | lower: column.data_type | lower}) -%}
      {%- do exact.update({column.name: column.data_type | lower}) -%}
      {%- do spellings.update({column.name | lower: spellings.get(column.name | lower, []) + [column.name]}) -%}
    {%- endfor -%}
  {%- endif -%}
  {%- set exprs = {} -%}
  {%- for role in required + optional -%}
    {%- set name = mapping.get(role) -%}
    {%- if name is none and role in optional -%}
      {%- do exprs.update({role: 'cast(null as timestamp)'}) -%}
    {%- else -%}
      {%- set sql = consentgate._identifier(name, macro_name, 'consentgate_consent_columns.' ~ role) -%}
      {%- set key = (name | trim | replace('"', '')) | lower -%}
      {%- if execute and key not in types -%}
        {{ exceptions.raise_compiler_error(
            macro_name ~ ": consent relation " ~ consent_relation ~ " has no column '" ~ name
            ~ "' (role " ~ role ~ "; columns: " ~ (types.keys() | sort | join(', '))
            ~ "); map it in var consentgate_consent_columns") }}
      {%- endif -%}
      {%- set unquoted = name | trim | replace('"', '') -%}
      {%- if execute and unquoted not in exact and spellings.get(key, []) | length > 1 -%}
        {{ exceptions.raise_compiler_error(
            macro_name ~ ": consent relation " ~ consent_relation ~ ": column name '" ~ name ~ "' matches '"
            ~ (spellings[key] | join("' and '")) ~ "' case-insensitively and neither exactly; name the column exactly") }}
      {%- endif -%}
      {%- set dtype = exact.get(unquoted, types.get(key, 'timestamp')) -%}
      {%- if role == 'subject_id' and modules.re.match('^(decimal|numeric|double|float|real)', dtype) -%}
        {{ exceptions.raise_compiler_error(
            macro_name ~ ": consent column '" ~ name ~ "' (subject_id) of " ~ consent_relation ~ " has type "
            ~ dtype ~ ": a decimal or floating-point number has no unique text form (42 = 42.0 = 4.2e1), so it "
            ~ "cannot identify a subject; store subject ids as text or an integer type") }}
      {%- endif -%}
      {%- if role in timestamps -%}
        {%- if 'with time zone' in dtype or dtype in ['timestamptz', 'timestamp_tz'] -%}
          {%- set sql = '(' ~ sql ~ " at time zone 'UTC')" -%}
        {%- elif dtype == 'date' -%}
          {%- set sql = 'cast(' ~ sql ~ ' as timestamp)' -%}
        {%- elif not dtype.startswith('timestamp') -%}
          {{ exceptions.raise_compiler_error(
              macro_name ~ ": consent column '" ~ name ~ "' (" ~ role ~ ") of " ~ consent_relation
              ~ " has type " ~ dtype ~ ", expected a timestamp or date") }}
        {%- endif -%}
      {%- endif -%}
      {%- do exprs.update({role: sql}) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(exprs) }}
{% endmacro %}
