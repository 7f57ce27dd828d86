{#-
  Breadth-first walk upstream from the ad-targeting model start_id, not passing through models that
  call consented() for purpose. Every personal-data node reached is a violation, reported with the
  shortest such path: "model.x.ad <- model.x.stg <- source.x.raw.t (personal data, purpose p): no consented() call".
-#}
{% macro _coverage_paths(nodes, start_id, purpose) %}
  {%- set violations = [] -%}
  {%- set seen = [start_id] -%}
  {%- set queue = [[start_id]] -%}
  {#- Jinja has no while loop: each node is queued at most once, so len(nodes) + 1 steps suffice. -#}
  {%- for step in range(nodes | length + 1) -%}
    {%- if step < queue | length -%}
      {%- set path = queue[step] -%}
      {%- set current = path[-1] -%}
      {%- set node = nodes.get(current) or {} -%}
      {%- set is_gate = node.get('resource_type') == 'model' and purpose in consentgate._coverage_gate_purposes(node) -%}
      {%- if not is_gate -%}
        {%- if current != start_id and consentgate._coverage_marks(node).personal_data -%}
          {%- set others = [] -%}
          {%- for uid in path -%}
            {%- set on_path = nodes.get(uid) or {} -%}
            {%- set found = consentgate._coverage_gate_purposes(on_path) | unique | sort | list if on_path.get('resource_type') == 'model' else [] -%}
            {%- if found -%}
              {%- set quoted = [] -%}
              {%- for p in found -%}{%- do quoted.append("'" ~ p ~ "'") -%}{%- endfor -%}
              {%- do others.append(uid ~ " calls consented() for " ~ (quoted | join(', '))) -%}
            {%- endif -%}
          {%- endfor -%}
          {%- set reason = "no consented() call" ~ ((" for '" ~ purpose ~ "' (" ~ (others | join('; ')) ~ ")") if others else "") -%}
          {%- do violations.append((path | join(' <- ')) ~ " (personal data, purpose " ~ purpose ~ "): " ~ reason) -%}
        {%- endif -%}
        {%- for parent in ((node.get('depends_on') or {}).get('nodes') or []) | sort -%}
          {%- if parent not in seen -%}
            {%- do seen.append(parent) -%}
            {%- do queue.append(path + [parent]) -%}
          {%- endif -%}
        {%- endfor -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(violations) }}
{% endmacro %}
