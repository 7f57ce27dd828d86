{#-
  The error of a run's record after one more invocation: the failing node ids of every invocation so
  far (sorted, each once: "2 node(s) failed: a, b") followed by any other message, each once, joined
  by "; ". Ids only, never data. Returns none when nothing failed.
-#}
{% macro _merge_error(stored, failed_nodes, messages=[]) %}
  {%- set nodes = [] -%}
  {%- set others = [] -%}
  {%- set pattern = '^[0-9]+ node[(]s[)] failed: (.*)$' -%}
  {%- for part in ((stored or '') | string).split('; ') if part | trim -%}
    {%- set found = modules.re.match(pattern, part) -%}
    {%- if found -%}
      {%- do nodes.extend(found.group(1).split(', ')) -%}
    {%- elif part not in others -%}
      {%- do others.append(part) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do nodes.extend(failed_nodes) -%}
  {%- for message in messages if message not in others -%}
    {%- do others.append(message) -%}
  {%- endfor -%}
  {%- set nodes = nodes | unique | sort -%}
  {%- set parts = ([(nodes | length) ~ ' node(s) failed: ' ~ (nodes | join(', '))] if nodes else []) + others -%}
  {{ return((parts | join('; ')) if parts else none) }}
{% endmacro %}
