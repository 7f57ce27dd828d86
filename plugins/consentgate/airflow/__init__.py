"""The Airflow integration: operators, hooks, DAG tasks, the provider and the report web app.
The only package that imports Airflow."""
