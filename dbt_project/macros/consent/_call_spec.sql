{#-
  Validate the arguments shared by consented(), consent_counts(), the only_consented test and
  purge_withdrawn(), and resolve the package defaults. Returns a dict:
    macro, relation, subject_column (as written), subject_sql (SQL identifier), purpose (trimmed,
    A-Z lowered), normalize (none | 'lower'), as_of ('YYYY-MM-DD HH:MM:SS.ffffff', naive UTC),
    consent_relation (Relation), columns (role -> SQL expression, see _consent_columns).
  relation_kind: 'relation' requires a Relation (ref()/source() results); 'any' also accepts the
  subquery string dbt passes to generic tests that have a `where` config.
-#}
{% macro _call_spec(macro_name, relation, subject_column, purpose, as_of, normalize, consent_relation, relation_kind='relation') %}
  {%- if relation_kind == 'relation' and not consentgate._is_relation(relation) -%}
    {%- do consentgate._fail(macro_name, 'relation', 'must be a Relation, e.g. ref(...) or source(...)', relation) -%}
  {%- elif relation is none or (relation is string and relation | trim == '') -%}
    {%- do consentgate._fail(macro_name, 'relation', 'is required', relation) -%}
  {%- endif -%}
  {%- if subject_column is none or (subject_column is string and subject_column | trim == '') -%}
    {%- do consentgate._fail(macro_name, 'subject_column', 'is required: the column holding the subject id', subject_column) -%}
  {%- endif -%}
  {%- set subject_sql = consentgate._identifier(subject_column, macro_name, 'subject_column') -%}
  {%- do consentgate._check_subject_column(macro_name, relation, subject_column) -%}
  {%- if purpose is not string or purpose | trim(' ') == '' -%}
    {%- do consentgate._fail(macro_name, 'purpose', 'is required: a non-blank purpose such as ad_targeting', purpose) -%}
  {%- endif -%}
  {%- do consentgate._check_purpose(macro_name, consentgate._ascii_lower_text(purpose | trim(' '))) -%}
  {%- if normalize is not none and normalize != 'lower' -%}
    {%- do consentgate._fail(macro_name, 'normalize', "must be none or 'lower'", normalize) -%}
  {%- endif -%}
  {%- set resolved_as_of = consentgate._resolve_as_of(as_of, macro_name) -%}
  {%- set consent = consentgate._consent_relation(consent_relation, macro_name) -%}
  {{ return({
      'macro': macro_name,
      'relation': relation,
      'subject_column': subject_column | trim,
      'subject_sql': subject_sql,
      'purpose': consentgate._ascii_lower_text(purpose | trim(' ')),
      'normalize': normalize,
      'as_of': resolved_as_of,
      'consent_relation': consent,
      'columns': consentgate._consent_columns(consent, macro_name),
  }) }}
{% endmacro %}
