"""Run `dbt parse` on several projects in ONE process (dbt imported once), for the compile-error tests.

Usage: python dbt_parse_many.py PROJECT_DIR...  ->  prints {project_dir: {"success": bool, "error": str}}
as JSON. Each project gets its own dbtRunner invocation; this short-lived process does nothing else.
"""

from __future__ import annotations

import json
import sys


def main(projects: list[str]) -> None:
    from dbt.cli.main import dbtRunner

    results = {}
    for project in projects:
        res = dbtRunner().invoke(["--quiet", "parse", "--project-dir", project, "--profiles-dir", project])
        results[project] = {
            "success": bool(res.success),
            "error": "" if res.exception is None else str(res.exception),
        }
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
