{#-
  The purposes declared in var consentgate_purposes, trimmed and A-Z lowered as the rule compares
  them (a list), or none when the var is not set. A malformed var fails naming what is accepted.
-#}
{% macro _declared_purposes() %}
  {%- set value = consentgate.get_config('purposes') -%}
  {%- if value is none -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set names = [] -%}
  {%- set problem = namespace(found=false) -%}
  {%- if value is mapping -%}
    {%- set items = value.keys() | list -%}
  {%- elif value is iterable and value is not string -%}
    {%- set items = [] -%}
    {%- for item in value -%}
      {%- do items.append(item.get('name') if item is mapping else item) -%}
    {%- endfor -%}
  {%- else -%}
    {%- set items = [none] -%}
  {%- endif -%}
  {%- for item in items -%}
    {%- if item is not string or item | trim(' ') == '' -%}
      {%- set problem.found = true -%}
    {%- else -%}
      {%- do names.append(consentgate._ascii_lower_text(item | trim(' '))) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if problem.found -%}
    {{ exceptions.raise_compiler_error(
        "consentgate: var 'consentgate_purposes' must be a list of purpose names, a list of {name, description} "
        ~ "or a mapping of names to descriptions; got: " ~ value) }}
  {%- endif -%}
  {{ return(names) }}
{% endmacro %}
