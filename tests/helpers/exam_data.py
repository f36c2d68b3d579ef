"""Valid exam manifests and folders for tests to start from and then break."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EXAM_ID = "3f2b8c1e-5d4a-4c3b-9a8f-1e2d3c4b5a69"
RIGHT_ID = "0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
LEFT_ID = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"

_BASE: dict[str, Any] = {
    "format": "eyer-exam",
    "format_version": 1,
    "exam_id": EXAM_ID,
    "sequence_number": 7,
    "exam_type": "color",
    "captured_at": "2025-03-14T09:26:53-03:00",
    "patient": {
        "name": {"family": "Gonçalves", "given": "Maria", "middle": "da Conceição"},
        "document": {"type": "CPF", "number": "529.982.247-25"},
        "sex": "F",
        "birth_date": "1958-11-02",
    },
    "anamnesis": {"diabetes": "yes", "hypertension": "no"},
    "diopters": {"R": -1.25, "L": 0.5},
    "pupil_dilated": False,
    "device": {
        "serial_number": "EYER-0001",
        "software_version": "2.1.0",
        "clinic_name": "Clínica São Lucas",
    },
    "worklist": None,
    "images": [
        {
            "image_id": RIGHT_ID,
            "file": "images/R-01.jpg",
            "laterality": "R",
            "role": "capture",
        },
        {
            "image_id": LEFT_ID,
            "file": "images/L-02.jpg",
            "laterality": "L",
            "role": "capture",
        },
    ],
    "stereo_pairs": [],
}


def manifest_data(**changes: Any) -> dict[str, Any]:
    """Return a valid colour exam manifest with top-level keys replaced."""
    data = copy.deepcopy(_BASE)
    data.update(changes)
    return data


def write_exam_folder(
    folder: Path, data: dict[str, Any] | None = None, *, image_bytes: bytes = b"jpeg"
) -> Path:
    """Write a manifest and a small file for each image it lists; return folder."""
    data = manifest_data() if data is None else data
    folder.mkdir(parents=True, exist_ok=True)
    for image in data.get("images", []):
        file = image.get("file") if isinstance(image, dict) else None
        if isinstance(file, str) and ".." not in file and not file.startswith("/"):
            target = folder / file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(image_bytes)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    (folder / "exam.json").write_text(text, encoding="utf-8")
    return folder
