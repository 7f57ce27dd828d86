{#-
  Whether a relation exists; when dbt's relation cache says it does not, the database is asked. The
  cache is filled once, when an invocation starts, and is wrong for the evidence in two ways: a
  relation another process created since is missing from it, and dbt-spark caches a whole schema as
  empty when a concurrent invocation drops a relation while it lists the schema (its
  list_relations_without_caching returns [] on TABLE_OR_VIEW_NOT_FOUND). Evidence that trusted it
  would record a consented input as absent: no counts, no fingerprint.
-#}
{% macro _relation_exists(database, schema, identifier) %}
  {%- if adapter.get_relation(database, schema, identifier) is not none -%}
    {{ return(true) }}
  {%- endif -%}
  {{ return(adapter.dispatch('_relation_exists_uncached', 'consentgate')(database, schema, identifier)) }}
{% endmacro %}

{#- dbt's own listing macro, uncached (its rows: database, name, schema, type). -#}
{% macro default___relation_exists_uncached(database, schema, identifier) %}
  {%- set listed = list_relations_without_caching(
        api.Relation.create(database=database or target.database, schema=schema)) -%}
  {{ return((identifier | lower) in (listed.columns['name'].values() | map('lower') | list)) }}
{% endmacro %}

{#- SHOW TABLES reads the catalog's names only (no per-table metadata a concurrent drop can fail). -#}
{% macro spark___relation_exists_uncached(database, schema, identifier) %}
  {%- set schemas = run_query("show schemas").columns[0].values() | map('lower') | list -%}
  {%- if (schema | lower) not in schemas -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set tables = run_query("show tables in `" ~ (schema | replace('`', '``')) ~ "`") -%}
  {{ return((identifier | lower) in (tables.columns[1].values() | map('lower') | list)) }}
{% endmacro %}
