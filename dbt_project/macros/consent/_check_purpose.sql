{#-
  Fail the compile when `purpose` (already trimmed and A-Z lowered) is not declared in var
  consentgate_purposes, naming it and the declared ones: a misspelled purpose would otherwise match no
  consent event and silently yield 0 rows. The var takes a list of names, a list of {name, description}
  (a policy file's `purposes:`), or a mapping name -> description. Without the var nothing can be
  checked: consented() logs a warning at run time (dbt --warn-error makes it an error).
-#}
{% macro _check_purpose(macro_name, purpose) %}
  {%- set declared = consentgate._declared_purposes() -%}
  {%- if declared is none -%}
    {%- if execute and macro_name == 'consentgate.consented' -%}
      {%- do exceptions.warn(macro_name ~ ": purpose '" ~ purpose ~ "' cannot be checked: no purposes are declared; "
          ~ "declare them in var consentgate_purposes (e.g. [ad_targeting, email_marketing]) so a misspelled one fails the compile") -%}
    {%- endif -%}
    {{ return(none) }}
  {%- endif -%}
  {%- if purpose not in declared -%}
    {%- do consentgate._fail(macro_name, 'purpose', 'is not a declared purpose (var consentgate_purposes: '
        ~ ((declared | sort | join(', ')) or 'none declared') ~ ')', purpose) -%}
  {%- endif -%}
{% endmacro %}
