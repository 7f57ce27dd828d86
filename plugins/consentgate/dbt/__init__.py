"""The dbt integration's Python side: the coverage check over a dbt manifest (never imports dbt)."""
