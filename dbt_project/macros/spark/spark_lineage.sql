{#-
  log_lineage on dbt-spark (docs/spark.md#log_lineage-on-spark). Spark on parquet has no UPDATE, DELETE,
  transactions or locks, so the evidence is the Python engine's on Spark (engine/spark.py,
  ensure_evidence): append-only `consentgate_runs_log` / `consentgate_lineage_log` (the columns of
  evidence_ddl as STRING / BIGINT / TIMESTAMP, plus `version` BIGINT) behind views `consentgate_runs` /
  `consentgate_lineage` that show each key's latest version (key: run_id; run_id + dataset), unless that
  version is a tombstone (`trigger` = 'superseded'). Every change is a new version; nothing is rewritten.

  The composition rules of log_lineage hold, each by new versions:
  - this invocation's models' lineage rows: a new version of each (run, dataset); a dataset of one of
    those models that an earlier invocation wrote and this one no longer has (its consented() calls
    changed) gets a tombstone version, so the view drops it; other models' rows are not touched;
  - the run row: a new version that copies the latest one and merges this invocation into it: status
    failed if any version of the run was failed or this invocation had a failing node (computed in the
    INSERT itself from every version), error and planned_datasets merged over every version, the
    earliest start and latest finish; a different cut-off or consent log fails the run and the
    invocation; a run owned by airflow/cli gets only dbt_invocation_id and planned_datasets (its
    status is copied from the owner's latest version), and a run its owner finished successfully is
    never written to;
  - the lineage versions are written before the run version (as the engine writes the run's closing
    version last), except by an invocation with a failing node: it appends its failed run version
    first, so the failure is recorded whatever happens to its lineage writes.

  No lock: concurrent invocations each read, append, then re-read and repair. After appending, an
  invocation reads every version again and, while the latest one is not the merge of all of them and
  of its own part (a version written by another invocation in between, or an append the commit
  protocol lost), appends the merge (up to 5 rounds; then it fails). The last writer therefore leaves
  the merge of every invocation as the latest version, and a failure, once appended, is never
  followed by a settled `success`.
-#}

{#- The evidence views and their append-only logs, created if missing (the engine's DDL). -#}
{% macro spark__evidence_relations(create=true) %}
  {%- set schema = consentgate.get_config('evidence_schema') or target.schema -%}
  {%- set tables = {} -%}
  {%- for kind, name in [('runs', 'consentgate_runs'), ('lineage', 'consentgate_lineage')] -%}
    {%- do tables.update({kind: api.Relation.create(schema=schema, identifier=name)}) -%}
    {%- do tables.update({kind ~ '_log': api.Relation.create(schema=schema, identifier=name ~ '_log')}) -%}
  {%- endfor -%}
  {%- if create and execute -%}
    {%- do adapter.create_schema(tables.runs) -%}
    {%- for kind, keys in [('runs', ['run_id']), ('lineage', ['run_id', 'dataset'])] -%}
      {%- set columns = consentgate._spark_evidence_columns(kind) -%}
      {%- if adapter.get_relation(none, schema, tables[kind ~ '_log'].identifier) is none -%}
        {%- set typed = [] -%}
        {%- for name, type in columns -%}
          {%- do typed.append(consentgate._spark_quote(name) ~ ' ' ~ type) -%}
        {%- endfor -%}
        {%- do run_query("create table if not exists " ~ tables[kind ~ '_log'] ~ " (" ~ (typed | join(', '))
                         ~ ", version bigint) using parquet") -%}
      {%- endif -%}
      {%- if adapter.get_relation(none, schema, tables[kind].identifier) is none -%}
        {%- do run_query("create view if not exists " ~ tables[kind] ~ " as select " ~ consentgate._spark_names(columns)
            ~ " from (select *, row_number() over (partition by " ~ consentgate._spark_names(keys)
            ~ " order by version desc) as _consentgate_n from " ~ tables[kind ~ '_log']
            ~ ") where _consentgate_n = 1 and coalesce(`trigger`, '') <> 'superseded'") -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(tables) }}
{% endmacro %}

{% macro _spark_quote(name) %}
  {{ return('`' ~ name ~ '`') }}
{% endmacro %}

{#- The names of (name, type) pairs, or of plain names, each quoted, as one comma-separated list. -#}
{% macro _spark_names(columns) %}
  {%- set names = [] -%}
  {%- for column in columns -%}
    {%- do names.append(consentgate._spark_quote(column if column is string else column[0])) -%}
  {%- endfor -%}
  {{ return(names | join(', ')) }}
{% endmacro %}

{#- (name, Spark type) of an evidence table's columns, in evidence_ddl's order (varchar is STRING). -#}
{% macro _spark_evidence_columns(kind) %}
  {%- set columns = [] -%}
  {%- for line in (consentgate.default__evidence_ddl('t', kind) | string).split('\n') -%}
    {%- set found = modules.re.match('^ +([a-z_]+) ([a-z]+)', line) -%}
    {%- if found -%}
      {%- do columns.append((found.group(1), 'string' if found.group(2) == 'varchar' else found.group(2))) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(columns) }}
{% endmacro %}

{#- A row version: this process's clock in microseconds since 1970, above every version seen (as the
    engine's next_version()). -#}
{% macro _spark_next_version(seen) %}
  {%- set d = modules.datetime.datetime.now(modules.pytz.utc) - modules.datetime.datetime(1970, 1, 1, tzinfo=modules.pytz.utc) -%}
  {%- set now = (d.days * 86400 + d.seconds) * 1000000 + d.microseconds -%}
  {{ return([now, (seen | int) + 1] | max) }}
{% endmacro %}

{#- Every version of a run's record, oldest first, as dicts. -#}
{% macro _spark_run_versions(log, run_key, as_of) %}
  {%- do run_query("refresh table " ~ log) -%}
  {%- set found = run_query("select `trigger`, status, error, planned_datasets, consent_table, case when as_of = "
      ~ consentgate.timestamp_literal(as_of) ~ " then 1 else 0 end as same_as_of, version, dbt_invocation_id from "
      ~ log ~ " where run_id = " ~ run_key ~ " order by version") -%}
  {%- set versions = [] -%}
  {%- for row in found.rows -%}
    {%- do versions.append({'trigger': row[0], 'status': row[1], 'error': row[2], 'planned': row[3],
                            'consent_table': row[4], 'same_as_of': row[5] | int, 'version': row[6] | int,
                            'dbt_invocation_id': row[7]}) -%}
  {%- endfor -%}
  {{ return(versions) }}
{% endmacro %}

{#- What the run's latest version must say once this invocation is merged into every version:
    {'failed', 'error', 'planned'} (a foreign run: only planned, the owner's list first). -#}
{% macro _spark_merged_run(versions, foreign, failed, mismatch, planned) %}
  {%- set latest = versions[-1] if versions else none -%}
  {%- set earlier = fromjson(latest.planned) if (latest is not none and latest.planned) else [] -%}
  {%- set others = [] -%}
  {%- set errors = [] -%}
  {%- set state = {'failed': (failed or mismatch) | length > 0} -%}
  {%- for v in versions -%}
    {%- do others.extend(fromjson(v.planned) if v.planned else []) -%}
    {%- if v.error -%}
      {%- do errors.append(v.error) -%}
    {%- endif -%}
    {%- if v.status == 'failed' -%}
      {%- do state.update({'failed': true}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set planned_all = earlier + ((others + planned) | unique | sort | reject('in', earlier) | list) -%}
  {%- if not foreign -%}
    {%- set planned_all = planned_all | unique | sort | list -%}
  {%- endif -%}
  {{ return({'failed': state.failed, 'planned': planned_all,
             'error': consentgate._merge_error(errors | join('; '), failed, mismatch)}) }}
{% endmacro %}

{#- Whether the latest version already says what `merged` says. -#}
{% macro _spark_settled(latest, merged, foreign) %}
  {%- if latest is none -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set planned = fromjson(latest.planned) if latest.planned else [] -%}
  {%- if foreign -%}
    {{ return(merged.planned | reject('in', planned) | list | length == 0) }}
  {%- endif -%}
  {{ return(planned == merged.planned and latest.status == ('failed' if merged.failed else 'success')
            and (latest.error or none) == merged.error) }}
{% endmacro %}

{#- A new version of the run's record: a copy of version `copy_of` (none: a new record, every column in
    `changes`) with `changes` (column -> SQL expression). -#}
{% macro _spark_run_version_sql(log, run_key, changes, version, copy_of=none) %}
  {%- set names = [] -%}
  {%- set values = [] -%}
  {%- for name, type in consentgate._spark_evidence_columns('runs') -%}
    {%- do names.append(consentgate._spark_quote(name)) -%}
    {%- do values.append(changes[name] if name in changes else consentgate._spark_quote(name)) -%}
  {%- endfor -%}
  {%- set sql = "insert into " ~ log ~ " (" ~ (names | join(', ')) ~ ", version) select " ~ (values | join(', '))
      ~ ", " ~ version -%}
  {%- if copy_of is not none -%}
    {%- set sql = sql ~ " from " ~ log ~ " where run_id = " ~ run_key ~ " and version = " ~ copy_of ~ " limit 1" -%}
  {%- endif -%}
  {{ return(sql) }}
{% endmacro %}

{#- The changes this invocation makes to a run's latest version, as SQL expressions. -#}
{% macro _spark_run_changes(log, inv, merged, foreign) %}
  {%- set changes = {'dbt_invocation_id': consentgate._sql_string(invocation_id),
                     'planned_datasets': consentgate._sql_string(tojson(merged.planned))} -%}
  {%- if not foreign -%}
    {%- set started = consentgate.timestamp_literal(inv.started_at) -%}
    {%- set finished = consentgate.timestamp_literal(inv.finished_at) -%}
    {%- set every = " from " ~ log ~ " where run_id = " ~ inv.run_key -%}
    {#- Failed when any version, even one appended since this invocation read them, is failed. -#}
    {%- do changes.update({
        'status': "case when " ~ ('true' if merged.failed else 'false') ~ " or (select count(*)" ~ every
                  ~ " and status = 'failed') > 0 then 'failed' else 'success' end",
        'error': consentgate._sql_string(merged.error),
        'started_at': "least(" ~ started ~ ", (select min(started_at)" ~ every ~ "))",
        'finished_at': "greatest(" ~ finished ~ ", (select max(finished_at)" ~ every ~ "))",
    }) -%}
  {%- endif -%}
  {{ return(changes) }}
{% endmacro %}

{#- Append lineage rows (dicts, each written as one new version); returns the version written. -#}
{% macro _spark_append_lineage(log, run_key, rows) %}
  {%- set seen = run_query("select coalesce(max(version), 0) from " ~ log ~ " where run_id = " ~ run_key).columns[0].values()[0] -%}
  {%- set version = consentgate._spark_next_version(seen) -%}
  {%- set columns = consentgate._spark_evidence_columns('lineage') -%}
  {%- set tuples = [] -%}
  {%- for row in rows -%}
    {%- set values = [] -%}
    {%- for name, type in columns -%}
      {%- if type == 'timestamp' -%}
        {%- do values.append(consentgate.timestamp_literal(row.get(name))) -%}
      {%- else -%}
        {%- do values.append(consentgate._sql_value(row.get(name))) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- do tuples.append("(" ~ (values | join(', ')) ~ ", " ~ version ~ ")") -%}
  {%- endfor -%}
  {%- do run_query("insert into " ~ log ~ " (" ~ consentgate._spark_names(columns)
                   ~ ", version) values " ~ (tuples | join(', '))) -%}
  {{ return(version) }}
{% endmacro %}

{% macro spark__log_lineage(results) %}
  {%- set inv = consentgate._lineage_invocation(results) -%}
  {%- if inv is none -%}
    {{ return('') }}
  {%- endif -%}
  {%- set run_id, run_key, as_of, consent_table = inv.run_id, inv.run_key, inv.as_of, inv.consent_table -%}
  {%- set tables = consentgate.evidence_relations(create=true) -%}
  {%- set versions = consentgate._spark_run_versions(tables.runs_log, run_key, as_of) -%}
  {%- set stored = versions[-1] if versions else none -%}

  {%- set mismatch = [] -%}
  {%- if stored is not none -%}
    {%- if stored.same_as_of != 1 -%}
      {%- do mismatch.append('invocation ' ~ invocation_id ~ ' used cut-off ' ~ as_of
          ~ ', not the run\'s: pass the same consentgate_as_of to every invocation of a run') -%}
    {%- endif -%}
    {%- if stored.consent_table is not none and not consentgate._same_table(stored.consent_table, consent_table) -%}
      {%- do mismatch.append('invocation ' ~ invocation_id ~ ' read the consent log ' ~ consent_table
          ~ ', the run read ' ~ stored.consent_table) -%}
    {%- endif -%}
  {%- endif -%}
  {%- set foreign = stored is not none and stored.trigger is not none and (stored.trigger | lower) != 'dbt' -%}
  {%- if foreign and stored.status == 'success' -%}
    {%- do exceptions.raise_compiler_error("consentgate.log_lineage: run id '" ~ run_id ~ "' already finished successfully ("
        ~ stored.trigger ~ "); its evidence is never rewritten: use a new run id (docs/runs.md)") -%}
  {%- elif foreign and mismatch -%}
    {%- do exceptions.raise_compiler_error("consentgate.log_lineage: run '" ~ run_id ~ "': " ~ (mismatch | join('; '))) -%}
  {%- endif -%}

  {#- Lineage before the run version, as the engine writes a run's closing version last; but an
      invocation with a failing node records the failure first (whatever happens to its lineage
      writes, the run is failed). None for a mismatch: its rows describe another cut-off. -#}
  {%- if not mismatch and not inv.failed -%}
    {%- do consentgate._spark_write_lineage(tables.lineage, tables.lineage_log, inv) -%}
  {%- endif -%}

  {#- Then the run row: append this invocation's version, re-read, and repair until the latest version
      is the merge of all (another invocation may have appended in between). -#}
  {%- set state = {'settled': false, 'rounds': 0, 'versions': versions} -%}
  {%- for round in range(6) if not state.settled -%}
    {%- set versions = state.versions -%}
    {%- set latest = versions[-1] if versions else none -%}
    {%- set merged = consentgate._spark_merged_run(versions, foreign, inv.failed, mismatch, inv.planned) -%}
    {%- if round > 0 and (consentgate._spark_settled(latest, merged, foreign)
                          or (foreign and latest.status == 'success')) -%}
      {%- do state.update({'settled': true}) -%}
    {%- elif round < 5 -%}
      {%- set changes = consentgate._spark_run_changes(tables.runs_log, inv, merged, foreign) -%}
      {%- set version = consentgate._spark_next_version(latest.version if latest else 0) -%}
      {%- if latest is none -%}
        {%- do changes.update({
            'run_id': run_key,
            'started_at': consentgate.timestamp_literal(inv.started_at),
            'finished_at': consentgate.timestamp_literal(inv.finished_at),
            'as_of': consentgate.timestamp_literal(as_of),
            'consent_table': consentgate._sql_string(consent_table),
            'consent_fingerprint': consentgate._sql_string(inv.snapshot.fingerprint),
            'consent_events_counted': consentgate._sql_value(inv.snapshot.events_counted),
            'trigger': "'dbt'",
            'package_version': "'0.1.0'",
        }) -%}
        {%- for name, type in consentgate._spark_evidence_columns('runs') if name not in changes -%}
          {%- do changes.update({name: 'cast(null as ' ~ type ~ ')'}) -%}
        {%- endfor -%}
      {%- endif -%}
      {%- do run_query(consentgate._spark_run_version_sql(tables.runs_log, run_key, changes, version,
                                                          latest.version if latest else none)) -%}
      {%- do state.update({'rounds': round + 1,
                           'versions': consentgate._spark_run_versions(tables.runs_log, run_key, as_of)}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if not state.settled -%}
    {%- do exceptions.raise_compiler_error("consentgate.log_lineage: run '" ~ run_id ~ "': its record in "
        ~ tables.runs_log ~ " kept changing under concurrent invocations (" ~ state.rounds
        ~ " versions appended); run this invocation again to merge it") -%}
  {%- endif -%}
  {%- if not mismatch and inv.failed -%}
    {%- do consentgate._spark_write_lineage(tables.lineage, tables.lineage_log, inv) -%}
  {%- endif -%}
  {%- if mismatch -%}
    {%- do exceptions.raise_compiler_error("consentgate.log_lineage: run '" ~ run_id ~ "': " ~ (mismatch | join('; '))) -%}
  {%- endif -%}
  {%- do log("consentgate.log_lineage: run " ~ run_id ~ ": " ~ inv.lineage_rows | length ~ " lineage row(s) of "
             ~ inv.built | length ~ " model(s), " ~ inv.failed | length ~ " failing node(s), in " ~ tables.lineage_log
             ~ " (" ~ state.rounds ~ " run version(s) appended)", info=true) -%}
  {{ return('') }}
{% endmacro %}

{#- This invocation's lineage versions: new versions of its models' rows, tombstones for their rows
    that are gone; counted after the append (a concurrent commit can lose it), appended once more if
    short, else the invocation fails. -#}
{% macro _spark_write_lineage(lineage, lineage_log, inv) %}
  {%- set run_id, run_key = inv.run_id, inv.run_key -%}
  {%- set lineage_versions = [] -%}
  {%- if inv.built -%}
    {%- do run_query("refresh table " ~ lineage_log) -%}
    {%- set names = inv.built | map(attribute='result') | map(attribute='node') | map(attribute='name') | list -%}
    {%- set fresh = inv.lineage_rows | map(attribute='dataset') | list -%}
    {%- set rows = inv.lineage_rows[:] -%}
    {%- set visible = run_query("select dataset from " ~ lineage ~ " where run_id = " ~ run_key
                                ~ " and `trigger` = 'dbt'").rows | map(attribute=0) | list -%}
    {%- for dataset in visible if dataset not in fresh and (dataset in names or dataset.split('/')[0] in names) -%}
      {%- do rows.append({'run_id': run_id, 'dataset': dataset, 'trigger': 'superseded'}) -%}
    {%- endfor -%}
    {%- for attempt in range(2) if lineage_versions | length == 0 or lineage_versions[-1][1] < rows | length -%}
      {%- set version = consentgate._spark_append_lineage(lineage_log, run_key, rows) -%}
      {%- do run_query("refresh table " ~ lineage_log) -%}
      {%- set written = run_query("select count(*) from " ~ lineage_log ~ " where run_id = " ~ run_key
                                  ~ " and version = " ~ version).columns[0].values()[0] | int -%}
      {%- do lineage_versions.append((version, written)) -%}
    {%- endfor -%}
    {%- if lineage_versions[-1][1] < rows | length -%}
      {%- do exceptions.raise_compiler_error("consentgate.log_lineage: run '" ~ run_id ~ "': the lineage rows appended to "
          ~ lineage_log ~ " are not all there (" ~ lineage_versions[-1][1] ~ " of " ~ rows | length
          ~ "): a concurrent write lost them; run the invocation again with the same run id") -%}
    {%- endif -%}
  {%- endif -%}
{% endmacro %}

{#- Spark's xxhash64 skips null arguments and is signed: each value is preceded by whether it is null,
    and the hash is shifted by 2^63 into [0, 2^64), as consentgate.rule.dialects.Dialect.row_hash_sums. -#}
{% macro spark__row_hash(expressions) %}
  {%- set parts = [] -%}
  {%- for expression in expressions -%}
    {%- do parts.append(expression ~ ' is null, ' ~ expression) -%}
  {%- endfor -%}
  {{ return('(cast(xxhash64(' ~ (parts | join(', ')) ~ ') as decimal(20, 0)) + 9223372036854775808)') }}
{% endmacro %}

{#- As the engine hashes them: purpose and status as binary text, the subject id too when it is text
    (an integer id as it is), so a `string collate UTF8_LCASE` column hashes as its bytes. -#}
{% macro spark___fingerprint_inputs(consent_relation, c) %}
  {%- set subject = (consentgate.get_config('consent_columns').get('subject_id') | string | trim | replace('`', '') | replace('"', '')) | lower -%}
  {%- set types = {} -%}
  {%- for column in adapter.get_columns_in_relation(consent_relation) -%}
    {%- do types.update({column.name | lower: column.data_type | lower}) -%}
  {%- endfor -%}
  {%- set subject_type = types.get(subject, 'string') -%}
  {%- set text = subject_type.startswith('string') or subject_type.startswith('varchar') or subject_type.startswith('char') -%}
  {{ return([consentgate._binary_text(c.subject_id) if text else c.subject_id, consentgate._binary_text(c.purpose),
             consentgate._binary_text(c.status), c.event_ts, c.recorded_at, c.expires_at]) }}
{% endmacro %}
