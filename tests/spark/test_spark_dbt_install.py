"""The installed Spark client is one piece: pyspark's Python files are the version of its jars (the
Spark Airflow provider's `pyspark-client` would silently overwrite them, docs/spark.md#install), no
`pyspark-client` distribution is installed, and dbt-spark sits beside them. No cluster needed."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

JAR = re.compile(r"^spark-(?:core|sql|catalyst|connect)_\d+\.\d+-(\d+\.\d+\.\d+)\.jar$")


def jar_versions(pyspark_dir: Path) -> set[str]:
    """The Spark versions in the names of pyspark's own jars (spark-core_2.13-4.3.0.jar -> 4.3.0)."""
    return {m.group(1) for f in (pyspark_dir / "jars").glob("spark-*.jar") if (m := JAR.match(f.name))}


def test_pyspark_python_files_match_its_jars() -> None:
    import pyspark

    versions = jar_versions(Path(pyspark.__file__).parent)
    assert versions, "no spark-core/sql jars in pyspark/jars: pyspark is not the full wheel"
    assert versions == {pyspark.__version__}, (pyspark.__version__, versions)
    assert metadata.version("pyspark") == pyspark.__version__


def test_no_pyspark_client_overwrites_pyspark() -> None:
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("pyspark-client")


def test_dbt_spark_is_installed_for_the_dbt_package() -> None:
    assert metadata.version("dbt-spark").startswith("1.11.")


def test_the_jar_check_catches_a_mismatch(tmp_path: Path) -> None:
    (tmp_path / "jars").mkdir()
    for name in ("spark-core_2.13-4.3.0.jar", "spark-sql_2.13-4.3.0.jar", "scala-library-2.13.16.jar"):
        (tmp_path / "jars" / name).touch()
    assert jar_versions(tmp_path) == {"4.3.0"}
    assert jar_versions(tmp_path) != {"4.2.0"}  # what pyspark-client 4.2.0's files would report
