"""Consent sources: build the consent log from the CMPs, signals and tools a team already has.

A policy's `sources:` section (`config.parse_sources`) declares each source: a kind, a table and its
column mapping, and how the source's vocabulary maps onto the policy's purposes. `ingest.ingest`
reads what is new in a source (past its watermark), maps it to consent events (`kinds/`) and appends
them to the consent log with the ingest's own `recorded_at`, in one transaction with the watermark
and the ingest's evidence row. See docs/sources.md.
"""
