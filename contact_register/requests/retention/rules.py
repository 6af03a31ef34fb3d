"""The machine-readable retention rules beside the prose in ``contact_register/register.yaml``
(``retention[].review_rules``): rule id -> months. Unknown rules or bad months fail loudly:
a typo must not silently stop the review."""

from __future__ import annotations

from contact_register.description import DescriptionError, load_description

KNOWN_RULES = ("prospect_inactive", "former_customer")


def review_rules(desc: dict | None = None) -> dict[str, int]:
    desc = desc or load_description()
    rules: dict[str, int] = {}
    for entry in desc["retention"]:
        for rule, spec in (entry.get("review_rules") or {}).items():
            if rule not in KNOWN_RULES:
                raise DescriptionError(f"retention review rule {rule!r} is unknown (known: {', '.join(KNOWN_RULES)})")
            months = spec.get("months") if isinstance(spec, dict) else None
            if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 240:
                raise DescriptionError(f"retention review rule {rule}: months must be a whole number 1..240")
            if rule in rules:
                raise DescriptionError(f"retention review rule {rule} given twice")
            rules[rule] = months
    if not rules:
        raise DescriptionError("the register description has no retention review_rules")
    return rules
