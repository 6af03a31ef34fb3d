"""A notice: a subject, readable lines, and facts (ids, system names, counts) for webhooks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SUBJECT_PREFIX = "[contact register]"
# Defence in depth for free text we did not write ourselves (exception messages of libraries):
# anything shaped like an email address or a phone number is blanked before it leaves.
EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Finnish and international numbers start with 0 or +; dates, counts and case ids never do here.
PHONE = re.compile(r"(?<![\w/.:-])(?:\+\d|0)[\d ()-]{6,}\d(?![\w-])")
MAX_FREE_TEXT = 600


def scrub(text: str, limit: int = MAX_FREE_TEXT) -> str:
    text = PHONE.sub("<number>", EMAIL.sub("<email>", text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Notice:
    kind: str  # run_failure, deadlines, freshness
    subject: str
    lines: tuple[str, ...]
    facts: dict[str, Any] = field(default_factory=dict)

    def full_subject(self) -> str:
        return f"{SUBJECT_PREFIX} {self.subject}"

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def payload(self) -> dict[str, Any]:
        """The webhook body: ``text`` is what Slack-style incoming webhooks show."""
        return {"text": f"{self.full_subject()}\n{self.text()}", "kind": self.kind, "subject": self.subject,
                "facts": self.facts}
