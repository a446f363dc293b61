"""Exports of a shipped sample design are byte-for-byte what they were when the hashes below were recorded.

A refactor must not change a single byte a facility receives. The sample design is exported in every format
(and the stacked assembly) into a folder of a fixed relative name, and every file's SHA-256 is compared with
``tests/data/export_sha256.json``. When a file format changes *on purpose*, record the new hashes with::

    python tests/test_export_bytes.py --record

and say in the commit why the bytes changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from typer.testing import CliRunner

from quaton_fab.cli.app import app

SAMPLE = Path(__file__).resolve().parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"
HASHES = Path(__file__).resolve().parent / "data" / "export_sha256.json"


def export_hashes(workdir: Path) -> dict[str, str]:
    """Export the sample design into ``workdir/export`` (every format, stacked too); name → SHA-256 hex."""
    args = ["export", str(SAMPLE), "--format", "all", "--stack", "--out", "export"]
    old_cwd, old_argv = Path.cwd(), sys.argv
    os.chdir(workdir)
    sys.argv = ["quaton-fab", "export", "SAMPLE", "--out", "export"]  # the command the sheet records
    try:
        result = CliRunner().invoke(app, args)
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
    assert result.exit_code == 0, result.output
    out = workdir / "export"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}


def test_sample_export_is_byte_identical_to_the_recorded_hashes(tmp_path):
    expected = json.loads(HASHES.read_text())
    got = export_hashes(tmp_path)
    assert sorted(got) == sorted(expected)
    changed = [name for name in expected if got[name] != expected[name]]
    assert not changed, f"files whose bytes changed: {changed}"


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        HASHES.write_text(json.dumps(export_hashes(Path(tmp)), indent=1, sort_keys=True) + "\n")
    print(f"recorded {HASHES}")
