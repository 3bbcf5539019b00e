"""Regenerate ``tests/data/golden.json``, the golden outputs of the bundled models.

    python tests/golden/make_golden.py

Run it when a change is meant to move what the bundled models compute (new models, new
descriptors), then review the diff: every number in it is a value users will now get.
What is computed is ``tests/test_golden.py``'s ``record()``, the very function the test
compares against the file.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from test_golden import GOLDEN, record, versions  # noqa: E402


def dumps(value: object, indent: int = 0) -> str:
    """JSON with one line per list of numbers (a window's descriptors, its values), so that
    a diff of the file shows which clip, model and window moved."""
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        return "[\n" + ",\n".join(pad + dumps(v, indent + 1) for v in value) + "\n" + " " * indent + "]"
    return json.dumps(value, separators=(", ", ": "))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        data = {"about": "golden outputs of the bundled models; regenerate with "
                         "python tests/golden/make_golden.py",
                "made_with": versions(), **record(Path(tmp))}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(dumps(data) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size / 1e3:.0f} kB): "
          f"{len(data['clips'])} clips, models {', '.join(data['models'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
