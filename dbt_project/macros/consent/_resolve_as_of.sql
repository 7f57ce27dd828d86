{#-
  The cut-off T as a naive UTC timestamp string 'YYYY-MM-DD HH:MM:SS.ffffff'.
  as_of: an ISO-8601 string (an offset is converted to UTC; naive means UTC) or a datetime;
  none means var consentgate_as_of, else the run's run_started_at.
-#}
{% macro _resolve_as_of(as_of, macro_name) %}
  {%- set dt_mod = modules.datetime -%}
  {%- set value = as_of -%}
  {%- set argument = 'as_of' -%}
  {%- if value is none or (value is string and value | trim == '') -%}
    {%- set value = consentgate.get_config('as_of') -%}
    {%- set argument = "as_of (var consentgate_as_of)" -%}
  {%- endif -%}
  {%- if value is none or (value is string and value | trim == '') -%}
    {%- set value = run_started_at -%}
  {%- endif -%}
  {%- if value is string -%}
    {%- set text = value | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$', text) -%}
      {%- do consentgate._fail(macro_name, argument, 'must be an ISO-8601 timestamp such as 2026-01-10T00:00:00', value) -%}
    {%- endif -%}
    {%- if text.endswith('Z') -%}
      {%- set text = text[:-1] ~ '+00:00' -%}
    {%- endif -%}
    {%- set value = dt_mod.datetime.fromisoformat(text) -%}
  {%- elif value is none or not value.strftime is defined -%}
    {%- do consentgate._fail(macro_name, argument, 'must be an ISO-8601 timestamp string or a datetime', value) -%}
  {%- endif -%}
  {%- if value.tzinfo is not none -%}
    {%- set value = value.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
  {%- endif -%}
  {{ return(value.strftime('%Y-%m-%d %H:%M:%S.%f')) }}
{% endmacro %}
