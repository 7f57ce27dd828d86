"""`python kill_after.py N consentgate-args...`: the consentgate CLI, killed with SIGKILL right after its
Nth statement on Spark has been sent (N = 0: never; the statements' first words are written, as a JSON
list, to the file named by $CONSENTGATE_TEST_STATEMENTS at exit). A test-only wrapper: the product has no such hook."""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
from pathlib import Path

from consentgate.engine import spark

after = int(sys.argv.pop(1))
sent: list[str] = []
execute = spark.SparkCursor.execute


def _sent(first_words: str) -> None:
    sent.append(first_words)
    if len(sent) == after:
        os.kill(os.getpid(), signal.SIGKILL)


def counted(self: spark.SparkCursor, sql: str, params=None) -> None:  # noqa: ANN001
    execute(self, sql, params)  # a command has run; a query runs when fetched, right after
    _sent(" ".join(sql.split()[:4]))


write_observed = spark.write_observed


def observed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    counts = write_observed(*args, **kwargs)  # the DataFrame write: a statement too
    _sent("write_observed")
    return counts


spark.SparkCursor.execute = counted  # type: ignore[method-assign]
spark.write_observed = observed
if os.environ.get("CONSENTGATE_TEST_STATEMENTS"):
    atexit.register(lambda: Path(os.environ["CONSENTGATE_TEST_STATEMENTS"]).write_text(json.dumps(sent)))

from consentgate.cli.app import main  # noqa: E402

sys.exit(main())
