{#-
  A statement that makes dbt's evidence writers wait for each other until the end of the current
  transaction, or none when the adapter needs none. PostgreSQL: a transaction (begun explicitly) and a
  transaction-scoped advisory lock,
  so concurrent dbt invocations (cosmos runs one per model, in parallel) create the evidence tables
  and read and merge a run's record one at a time; the lock is held for a few statements.
  DuckDB allows one writing process per database file, so it needs no lock.
-#}
{% macro _evidence_lock_sql() %}
  {{ return(adapter.dispatch('_evidence_lock_sql', 'consentgate')()) }}
{% endmacro %}

{% macro default___evidence_lock_sql() %}
  {{ return(none) }}
{% endmacro %}

{% macro postgres___evidence_lock_sql() %}
  {#- An explicit begin: after dbt's own COMMIT, psycopg2 may believe it is still in a transaction and
      send the next statements without one, and a transaction-scoped lock would end with its statement
      (seen with dbt-postgres 1.11). Inside a transaction already, PostgreSQL only warns. -#}
  {{ return("begin; select pg_advisory_xact_lock(hashtextextended('consentgate_evidence', 0))") }}
{% endmacro %}
