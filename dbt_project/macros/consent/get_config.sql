{#-
  Package defaults, in one place. Every setting `name` can be overridden with the dbt var
  `consentgate_<name>` (in dbt_project.yml `vars:` or with `--vars`).

    as_of             the cut-off T; default: the run's run_started_at (UTC)
    consent_relation  the consent log; default: `consent_events` in the target schema, read through
                      the package's source consentgate.consent_events. A string `table`,
                      `schema.table` or `database.schema.table` moves that source; a mapping
                      {ref: name} or {source: [source_name, table_name]} names a node of your own.
    purposes          the declared purposes: a list of names, a list of {name, description} (a
                      policy file's `purposes:`), or a mapping name -> description; a call for any
                      other purpose is a compile error. Default: none (not checked; a warning).
    consent_columns   mapping of the consent log's columns (docs/semantics.md); a partial mapping
                      is merged over the defaults
    run_id            the evidence run id; default: dbt's invocation_id
    evidence_schema   schema of consentgate_runs / consentgate_lineage; default: the target schema
-#}
{% macro get_config(name) %}
  {{ return(adapter.dispatch('get_config', 'consentgate')(name)) }}
{% endmacro %}

{% macro default__get_config(name) %}
  {%- set column_defaults = {
      'subject_id': 'subject_id',
      'purpose': 'purpose',
      'status': 'status',
      'event_ts': 'event_ts',
      'recorded_at': 'recorded_at',
      'expires_at': 'expires_at',
      'source': 'source',
      'policy_version': 'policy_version',
  } -%}
  {%- set defaults = {
      'as_of': none,
      'consent_relation': 'consent_events',
      'consent_columns': column_defaults,
      'run_id': none,
      'evidence_schema': none,
      'purposes': none,
  } -%}
  {%- if name not in defaults -%}
    {{ exceptions.raise_compiler_error(
        "consentgate.get_config: unknown setting '" ~ name ~ "'; known settings: "
        ~ (defaults.keys() | sort | join(', '))) }}
  {%- endif -%}
  {%- set value = var('consentgate_' ~ name, defaults[name]) -%}
  {%- if value is string and value | trim == '' -%}
    {%- set value = defaults[name] -%}
  {%- endif -%}
  {%- if name != 'consent_columns' -%}
    {{ return(value) }}
  {%- endif -%}
  {%- if value is not mapping -%}
    {{ exceptions.raise_compiler_error(
        "consentgate.get_config: var 'consentgate_consent_columns' must be a mapping of "
        ~ (column_defaults.keys() | sort | join(', ')) ~ " to column names; got: " ~ value) }}
  {%- endif -%}
  {%- set merged = {} -%}
  {%- do merged.update(column_defaults) -%}
  {%- for key, column in value.items() -%}
    {%- if key not in column_defaults -%}
      {{ exceptions.raise_compiler_error(
          "consentgate.get_config: var 'consentgate_consent_columns' has an unknown key '" ~ key
          ~ "'; known keys: " ~ (column_defaults.keys() | sort | join(', '))) }}
    {%- endif -%}
    {%- do merged.update({key: column}) -%}
  {%- endfor -%}
  {{ return(merged) }}
{% endmacro %}
