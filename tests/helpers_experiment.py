"""The test experiment (data/test.yaml) edited into a variant, its collection path made absolute."""

from pathlib import Path

import yaml

TEST = Path(__file__).resolve().parents[1] / "data" / "test.yaml"


def write_variant(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load(TEST.read_text())
    edit(doc)
    doc["collections"]["tiny"]["path"] = str(TEST.parent / doc["collections"]["tiny"]["path"])
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p
