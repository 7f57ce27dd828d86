{#- An insert of one row (a dict) into relation; timestamp_columns are written as timestamp literals. -#}
{% macro _insert_sql(relation, row, timestamp_columns=[]) %}
  {%- set columns = row.keys() | list | sort -%}
  {%- set values = [] -%}
  {%- for column in columns -%}
    {%- if column in timestamp_columns -%}
      {%- do values.append(consentgate.timestamp_literal(row[column])) -%}
    {%- else -%}
      {%- do values.append(consentgate._sql_value(row[column])) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return("insert into " ~ relation ~ " (" ~ (columns | join(', ')) ~ ") values (" ~ (values | join(', ')) ~ ")") }}
{% endmacro %}
