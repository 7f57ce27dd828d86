"""Evidence readers: run verification, the subject report, the HTML run report, OpenLineage events."""
