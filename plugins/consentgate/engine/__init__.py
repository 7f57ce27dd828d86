"""The engine: sessions over DB-API connections, the policy file, one enforcement with an atomic
replace, and the evidence tables. Knows nothing of Airflow or dbt."""
