{#-
  What a graph node is marked as: {'ad_targeting': bool, 'personal_data': bool, 'purpose': str or none}.
  Read from meta `consentgate: {...}` (node config meta, node meta, and a source's source_meta) and
  from the tags consentgate_ad_targeting / personal_data. The purpose is trimmed and lower-cased.
-#}
{% macro _coverage_marks(node) %}
  {%- set metas = [] -%}
  {%- for meta in [(node.get('config') or {}).get('meta'), node.get('meta'), node.get('source_meta')] -%}
    {%- if meta is mapping -%}
      {%- do metas.append(meta) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set marks = {'ad_targeting': false, 'personal_data': false, 'purpose': none} -%}
  {%- set tags = (node.get('tags') or []) + ((node.get('config') or {}).get('tags') or []) -%}
  {%- if 'consentgate_ad_targeting' in tags -%}
    {%- do marks.update({'ad_targeting': true}) -%}
  {%- endif -%}
  {%- if 'personal_data' in tags -%}
    {%- do marks.update({'personal_data': true}) -%}
  {%- endif -%}
  {%- for meta in metas -%}
    {%- set cg = meta.get('consentgate') -%}
    {%- if cg is mapping -%}
      {%- if cg.get('ad_targeting') in [true, 'true', 'True', 'yes'] -%}
        {%- do marks.update({'ad_targeting': true}) -%}
      {%- endif -%}
      {%- if cg.get('personal_data') in [true, 'true', 'True', 'yes'] -%}
        {%- do marks.update({'personal_data': true}) -%}
      {%- endif -%}
      {%- if cg.get('purpose') is string and cg.get('purpose') | trim(' ') and marks.purpose is none -%}
        {%- do marks.update({'purpose': consentgate._ascii_lower_text(cg.get('purpose') | trim(' '))}) -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- for meta in metas -%}
    {%- if marks.purpose is none and meta.get('consentgate_purpose') is string and meta.get('consentgate_purpose') | trim(' ') -%}
      {%- do marks.update({'purpose': consentgate._ascii_lower_text(meta.get('consentgate_purpose') | trim(' '))}) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(marks) }}
{% endmacro %}
