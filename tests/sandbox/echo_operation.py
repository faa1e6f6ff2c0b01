"""A toy operation's compute step, loaded by the sandbox worker as a plugin (--plugin): it says
back its text and its blobs reversed. Registered only by tests/sandbox/test_echo_operation.py."""

from typing import Any


def echo(header: dict[str, Any], blobs: list[bytes], limits: Any) -> tuple[dict[str, Any], list[bytes]]:
    text = header["params"].get("text")
    if not isinstance(text, str):
        raise ValueError("echo: params.text must be a string")
    return {"echo": text, "blobs": len(blobs)}, [blob[::-1] for blob in blobs]


OPERATIONS = {"echo": echo}
RESULT_SHAPES = {"echo": ({"echo": str, "blobs": int}, -1)}  # fields and their types; any blob count
