{#- Run statements (a list of SQL strings) in one transaction and commit it. -#}
{% macro _execute_in_transaction(statements) %}
  {%- for sql in statements -%}
    {%- call statement('consentgate_evidence', auto_begin=true) -%}
      {{ sql }}
    {%- endcall -%}
  {%- endfor -%}
  {%- do adapter.commit() -%}
{% endmacro %}
