"""Validate consentgate's OpenLineage facets against the JSON Schemas the package ships.

A facet is resolved the way a consumer resolves it: its `_schemaURL` names a schema document and a JSON
Pointer into it; the document must be the packaged file (`file://` URL, the default) and the facet must
be valid against the definition the pointer names. The schemas extend the OpenLineage spec's RunFacet
(`https://openlineage.io/spec/2-0-2/OpenLineage.json`); the tests have no network, so they register
under that URI the two definitions the schemas reference, written here as the spec states them: a
BaseFacet is an object with required `_producer` and `_schemaURL`, both URIs; a RunFacet is a BaseFacet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
from referencing import Registry, Resource

OPENLINEAGE_SPEC_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
OPENLINEAGE_SPEC: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": OPENLINEAGE_SPEC_ID,
    "$defs": {
        "BaseFacet": {
            "type": "object",
            "properties": {
                "_producer": {"type": "string", "format": "uri"},
                "_schemaURL": {"type": "string", "format": "uri"},
            },
            "additionalProperties": True,
            "required": ["_producer", "_schemaURL"],
        },
        "RunFacet": {"type": "object", "allOf": [{"$ref": "#/$defs/BaseFacet"}]},
    },
}

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uri")
def _is_absolute_uri(value: object) -> bool:
    # jsonschema checks "uri" only with rfc3987 installed (it is not here): a URI has a scheme.
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


def schema_document(url: str) -> tuple[str, Path]:
    """(document URI, file) that a `_schemaURL` names; only `file://` URLs resolve offline."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise AssertionError(f"_schemaURL {url!r} does not resolve to a file here (expected file://...)")
    return url.split("#", 1)[0], Path(unquote(parts.path))


def validate_facet(key: str, facet: dict[str, Any]) -> None:
    """Raise if `facet` (as emitted, JSON) is not one of ours or fails its shipped schema."""
    from consentgate.evidence.facets import PRODUCER, RUN_FACETS, schema_dir

    name = RUN_FACETS[key].__name__
    assert facet["_producer"] == PRODUCER, facet["_producer"]
    uri, path = schema_document(facet["_schemaURL"])
    assert path == schema_dir() / f"{name}.json", f"{facet['_schemaURL']} is not the packaged schema"
    assert facet["_schemaURL"] == f"{uri}#/$defs/{name}"
    spec = OPENLINEAGE_SPEC
    registry = Registry().with_resources(
        [
            (uri, Resource.from_contents(json.loads(path.read_text()))),
            (spec["$id"], Resource.from_contents(spec)),
        ]
    )
    validator = jsonschema.Draft202012Validator(
        {"$ref": facet["_schemaURL"]}, registry=registry, format_checker=FORMATS
    )
    validator.validate(facet)


def validate_consentgate_facets(events: list[dict[str, Any]]) -> int:
    """Validate every consentgate run facet in `events`; returns how many were checked."""
    from consentgate.evidence.facets import RUN_FACETS

    checked = 0
    for event in events:
        for key, facet in event.get("run", {}).get("facets", {}).items():
            if key in RUN_FACETS:
                validate_facet(key, facet)
                checked += 1
    return checked
