"""The decision rule as SQL: names, dialects and the one SQL generator of the rule. Knows no connection."""
