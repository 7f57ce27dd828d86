{#-
  At run time, fail when `subject_column` is not a column of `relation` (instead of a binder error about
  an internal alias). Plain names match case-insensitively, as unquoted SQL identifiers do; a quoted
  name must match exactly. A relation whose columns cannot be listed (not built yet, ephemeral) is not
  checked here: the statement itself still fails closed.
-#}
{% macro _check_subject_column(macro_name, relation, subject_column) %}
  {%- if not execute or not consentgate._is_relation(relation) -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set columns = adapter.get_columns_in_relation(relation) -%}
  {%- if columns | length == 0 -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set names = columns | map(attribute='name') | list -%}
  {%- set wanted = subject_column | trim -%}
  {%- if wanted.startswith('"') -%}
    {%- set found = wanted[1:-1].replace('""', '"') in names -%}
  {%- else -%}
    {%- set found = consentgate._ascii_lower_text(wanted) in (names | map('lower') | list) -%}
  {%- endif -%}
  {%- if not found -%}
    {%- do consentgate._fail(macro_name, 'subject_column', 'is not a column of ' ~ relation ~ ' (columns: ' ~ (names | join(', ')) ~ ')', subject_column) -%}
  {%- endif -%}
{% endmacro %}
