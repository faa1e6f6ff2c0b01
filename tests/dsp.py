"""Validating messages against the Dataspace Protocol 2025-1 JSON schemas in shared/testdata
(loaded from disk; no schema is fetched from the network)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft201909Validator
from referencing import Registry, Resource

from tests.conftest import TESTDATA

DSP = TESTDATA / "dsp-2025-1"


@cache
def _registry() -> Registry:
    resources = []
    for path in DSP.rglob("*-schema.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def validate(message: Any, schema: str) -> None:
    """Raise jsonschema.ValidationError unless ``message`` fits ``schema``, a path such as
    'negotiation/contract-request-message'."""
    document = json.loads((DSP / f"{schema}-schema.json").read_text())
    Draft201909Validator(document, registry=_registry()).validate(message)
