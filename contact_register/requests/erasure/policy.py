"""The erasure policy (``policy.yaml`` beside this file, or ``ERASURE_POLICY_PATH``) and the
field masking it describes.

A field rule is ``None`` (clear), ``{"fixed": text}``, ``{"hash": "text" | "email"}`` (a keyed
HMAC, so two masked copies of one value still match each other but reveal nothing) or a
system-specific word (``drop_subject``). Keyed hashes use ``REGISTER_HMAC_KEY``; without it a
random key per process is used (masked values then do not link across runs, which is harmless).
"""

from __future__ import annotations

from connectors.errors import SafeMessage
import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("policy.yaml")


class PolicyError(SafeMessage, ValueError):
    """The policy file is missing a setting or has one that makes no sense."""


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read the erasure policy {Path(path).name}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise PolicyError("the erasure policy must be a mapping of systems")
    return data


def load_policy(path: str | Path | None = None) -> dict:
    return _load(str(path or os.environ.get("ERASURE_POLICY_PATH") or DEFAULT_PATH))


def system_policy(system: str, path: str | Path | None = None) -> dict:
    policy = load_policy(path)
    section = policy.get(system) or {}
    if not isinstance(section, dict):
        raise PolicyError(f"erasure policy section {system} must be a mapping")
    return {"mask_email_domain": policy.get("mask_email_domain", "erased.example.com"), **section}


@lru_cache(maxsize=1)
def _fallback_key() -> bytes:
    return secrets.token_bytes(32)


def keyed_hash(value: str) -> str:
    key = os.environ.get("REGISTER_HMAC_KEY", "").encode() or _fallback_key()
    return hmac.new(key, value.strip().casefold().encode("utf-8"), hashlib.sha256).hexdigest()


def mask_value(rule: Any, value: Any, *, email_domain: str) -> Any:
    """The masked value of ``value`` under ``rule``. Lists (Pipedrive's emails/phones) are masked
    item by item and keep their shape ({value, label, primary}); a null rule clears them."""
    if rule is None:
        return [] if isinstance(value, list) else None
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict) and "value" in item:
                out.append({**{k: v for k, v in item.items() if k in ("label", "primary")},
                            "value": mask_value(rule, item["value"], email_domain=email_domain)})
            else:
                out.append(mask_value(rule, item, email_domain=email_domain))
        return out
    if isinstance(rule, dict) and "fixed" in rule:
        return str(rule["fixed"])
    if isinstance(rule, dict) and rule.get("hash") in ("text", "email"):
        digest = keyed_hash(str(value or ""))[:24]
        return f"erased-{digest}@{email_domain}" if rule["hash"] == "email" else f"erased-{digest}"
    raise PolicyError(f"unknown field rule {rule!r} (null, {{fixed: text}} or {{hash: text|email}})")
