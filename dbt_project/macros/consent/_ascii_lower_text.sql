{#- A compile-time string with A-Z lowered and nothing else, as ascii_lower() does in SQL (Jinja's
    `lower` filter is Python's Unicode str.lower()). -#}
{% macro _ascii_lower_text(text) %}
  {%- set out = [] -%}
  {%- for ch in text -%}
    {%- do out.append(ch | lower if ch in 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' else ch) -%}
  {%- endfor -%}
  {{ return(out | join('')) }}
{% endmacro %}
