{#-
  The purposes (trimmed, lower-cased) a model passes through consented(): from the
  /* consentgate:consented */ comments in its compiled code when it has been compiled, and, when it
  depends on macro.consentgate.consented, from the consented(...) calls in its raw code whose purpose
  is a string literal (keyword purpose=..., or the third positional argument).
  The regular expressions are the same as in plugins/consentgate/dbt/coverage.py.
-#}
{% macro _coverage_gate_purposes(node) %}
  {%- set purposes = [] -%}
  {%- for call in consentgate.consented_calls(node.get('compiled_code')) -%}
    {%- if call.get('purpose') -%}
      {%- do purposes.append(consentgate._ascii_lower_text(call.get('purpose') | trim(' '))) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set macros = (node.get('depends_on') or {}).get('macros') or [] -%}
  {%- if 'macro.consentgate.consented' in macros and node.get('raw_code') -%}
    {#- An argument: text without commas or parentheses, quoted strings, up to two levels of (...). -#}
    {%- set arg_re -%}(?:[^,()'"]|'[^']*'|"[^"]*"|\((?:[^()'"]|'[^']*'|"[^"]*"|\((?:[^()'"]|'[^']*'|"[^"]*")*\))*\))+{%- endset -%}
    {%- set call_re = '(?<![A-Za-z0-9_])consented\\s*\\(((?:' ~ arg_re ~ ')(?:,(?:' ~ arg_re ~ '))*)\\)' -%}
    {%- set keyword_re -%}(?:^|,)\s*purpose\s*=\s*(?:'([^']*)'|"([^"]*)")\s*(?:,|$){%- endset -%}
    {%- set literal_re -%}^\s*(?:'([^']*)'|"([^"]*)")\s*${%- endset -%}
    {%- for args in modules.re.findall(call_re, node.get('raw_code')) -%}
      {%- set keyword = modules.re.search(keyword_re, args) -%}
      {%- if keyword -%}
        {%- do purposes.append(consentgate._ascii_lower_text((keyword.group(1) or keyword.group(2) or '') | trim(' '))) -%}
      {%- else -%}
        {%- set positional = modules.re.findall(arg_re, args) -%}
        {%- if positional | length >= 3 -%}
          {%- set third = modules.re.match(literal_re, positional[2]) -%}
          {%- if third -%}
            {%- do purposes.append(consentgate._ascii_lower_text((third.group(1) or third.group(2) or '') | trim(' '))) -%}
          {%- endif -%}
        {%- endif -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(purposes | reject('equalto', '') | list) }}
{% endmacro %}
