"""The register description (``contact_register/register.yaml``): loaded and checked, so that a
missing language or processor field fails loudly instead of leaving a gap in a report."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

LANGS = ("fi", "en")
REQUIRED = ("controller", "contact", "purposes", "legal_bases", "data_categories", "sources", "processors",
            "retention", "rights", "complaint")


class DescriptionError(ValueError):
    pass


def default_path() -> Path:
    return Path(str(resources.files("contact_register") / "register.yaml"))


def _bilingual(item: Any, where: str) -> None:
    if not isinstance(item, dict) or any(not isinstance(item.get(lang), str) or not item[lang].strip()
                                         for lang in LANGS):
        raise DescriptionError(f"{where}: needs text in {' and '.join(LANGS)}")


def validate(desc: Any) -> dict:
    if not isinstance(desc, dict):
        raise DescriptionError("register description must be a mapping")
    for key in REQUIRED:
        if key not in desc:
            raise DescriptionError(f"register description lacks {key}")
    for key in ("purposes", "legal_bases", "data_categories", "sources", "retention", "rights"):
        if not isinstance(desc[key], list) or not desc[key]:
            raise DescriptionError(f"{key} must be a non-empty list")
        for i, item in enumerate(desc[key]):
            _bilingual(item, f"{key}[{i}]")
    _bilingual(desc["complaint"], "complaint")
    seen = set()
    for i, p in enumerate(desc["processors"]):
        if not isinstance(p, dict) or not p.get("system") or not p.get("name"):
            raise DescriptionError(f"processors[{i}]: needs system and name")
        if p["system"] in seen:
            raise DescriptionError(f"processors[{i}]: system {p['system']} twice")
        seen.add(p["system"])
        if p.get("export") not in ("api", "manual"):
            raise DescriptionError(f"processors[{i}]: export must be api or manual")
        _bilingual(p.get("holds"), f"processors[{i}].holds")
    return desc


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return validate(yaml.safe_load(fh))


def load_description(path: str | Path | None = None) -> dict:
    return _load(str(path or default_path()))


def processors(desc: dict) -> list[dict]:
    return list(desc["processors"])
