{#- target.database, or none on an adapter without databases (dbt-spark: a Spark relation has a schema only). -#}
{% macro _target_database() %}
  {{ return(target.database if target.database is defined else none) }}
{% endmacro %}
