"""What a requester gives to identify themselves: emails, phones, a name, an organisation.

Validation happens before anything is written, and errors name the field and the problem but
never the value (error texts end up in logs and in Dagster's event log).
"""

from __future__ import annotations

from connectors.errors import SafeMessage
import unicodedata
from dataclasses import dataclass, field

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

MAX_TEXT = 200  # a name or an organisation; longer is not a name
MAX_EMAIL = 254  # RFC 5321 path limit
MAX_PHONE = 40
MAX_VALUES = 10  # per kind: a request names a person, not a mailing list


class InvalidIdentifier(SafeMessage, ValueError):
    """An identifier that cannot be used: the message says which field and why, never the value
    (it may reach logs). ``terminal_text`` also names the value, for the operator's own terminal
    only (the command line that refused what they typed), never for logs or the trail."""

    def __init__(self, message: str, *, terminal_text: str | None = None) -> None:
        super().__init__(message)
        self.terminal_text = terminal_text or message


@dataclass(frozen=True)
class Identifiers:
    """Validated identifiers; ``emails`` normalised (lower case, IDNA), ``phones`` E.164."""

    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    name: str | None = None
    organization: str | None = None
    raw: dict[str, list[str]] = field(default_factory=dict, compare=False)

    def pairs(self) -> list[tuple[str, str, str]]:
        """(kind, value as given, normalised value) rows for the register."""
        out: list[tuple[str, str, str]] = []
        for kind, norms in (("email", self.emails), ("phone", self.phones)):
            for given, norm in zip(self.raw.get(kind, []), norms):
                out.append((kind, given, norm))
        if self.name:
            out.append(("name", self.raw["name"][0], name_key(self.name)))
        if self.organization:
            out.append(("organization", self.raw["organization"][0], self.organization.casefold()))
        return out

    def is_empty(self) -> bool:
        return not (self.emails or self.phones or self.name)


def clean_text(value: object, what: str, limit: int, *, error: type[SafeMessage] = InvalidIdentifier,
               line_breaks: bool = False) -> str:
    """Text a person typed, checked before it is kept: text, at most ``limit`` characters, valid
    Unicode, NFC-normalised and stripped, without control or unassigned characters (line breaks
    and tabs allowed when ``line_breaks``: notes and reasons). ``error`` names ``what`` and why,
    never the value. The one check for identifiers, corrections and the register's free text."""
    if not isinstance(value, str):
        raise error(f"{what}: must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise error(f"{what}: too long ({len(value)} characters, at most {limit})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{what}: not valid Unicode (lone surrogate code points)") from None
    value = unicodedata.normalize("NFC", value).strip()
    allowed = "\n\r\t" if line_breaks else ""
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in allowed for ch in value):
        raise error(f"{what}: contains control or unassigned characters")
    return value


def normalize_email_strict(value: object, what: str = "email") -> str:
    text = clean_text(value, what, MAX_EMAIL)
    if not text:
        raise InvalidIdentifier(f"{what}: empty")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        domain = text.rpartition("@")[2].rstrip(".").casefold()
        if any(domain == d or domain.endswith("." + d) for d in SPECIAL_USE_DOMAIN_NAMES):
            # Refused rightly: no real person's mailbox is at .invalid, .test, .local ...
            problem = ("its domain is a special-use or reserved name (RFC 6761: "
                       + ", ".join(f".{d}" for d in SPECIAL_USE_DOMAIN_NAMES)
                       + ") where no real mailbox can be: give the address the person uses")
        else:
            # email-validator's messages describe the syntax problem without echoing the address.
            problem = f"not a valid email address: {_no_value(str(exc), text)}"
        raise InvalidIdentifier(f"{what}: {problem}", terminal_text=f"{what} {text!r}: {problem}") from None
    return result.normalized.lower()


def normalize_phone_strict(value: object, what: str = "phone") -> str:
    text = clean_text(value, what, MAX_PHONE)
    if not text:
        raise InvalidIdentifier(f"{what}: empty")
    try:
        number = phonenumbers.parse(text, "FI")
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier(f"{what}: does not parse as a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier(f"{what}: not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def name_key(name: str) -> str:
    """Word-order free key as the warehouse builds it (``name_key`` in identity_macros.sql):
    accents stripped, anything but letters splits, tokens sorted ("Virtanen Matti" == "matti virtanen")."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    tokens = "".join(ch if ch.isalpha() else " " for ch in folded).split()
    return " ".join(sorted(tokens))


def _no_value(message: str, value: str) -> str:
    return message.replace(value, "<value>") if value else message


def _as_list(value: object, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_VALUES:
            raise InvalidIdentifier(f"{what}: too many values ({len(value)}, at most {MAX_VALUES})")
        return [v for v in value if not (isinstance(v, str) and not v.strip())]
    raise InvalidIdentifier(f"{what}: must be text or a list of texts")


def validate_identifiers(
    emails: object = None, phones: object = None, name: object = None, organization: object = None
) -> Identifiers:
    """Validate and normalise; raise :class:`InvalidIdentifier` on the first bad value.
    At least one email, phone or name is needed."""
    raw: dict[str, list[str]] = {}
    norms: dict[str, list[str]] = {"email": [], "phone": []}
    for kind, given, normalize, limit in (("email", emails, normalize_email_strict, MAX_EMAIL),
                                          ("phone", phones, normalize_phone_strict, MAX_PHONE)):
        for i, value in enumerate(_as_list(given, kind)):
            norm = normalize(value, f"{kind} #{i + 1}")
            if norm not in norms[kind]:  # the first spelling of each address or number is kept
                norms[kind].append(norm)
                raw.setdefault(kind, []).append(clean_text(value, kind, limit))
    norm_emails, norm_phones = norms["email"], norms["phone"]
    clean_name = clean_text(name, "name", MAX_TEXT) if name not in (None, "") else None
    if clean_name is not None and not name_key(clean_name):
        raise InvalidIdentifier("name: has no letters")
    clean_org = clean_text(organization, "organization", MAX_TEXT) if organization not in (None, "") else None
    if clean_name:
        raw["name"] = [clean_name]
    if clean_org:
        raw["organization"] = [clean_org]
    ids = Identifiers(tuple(norm_emails), tuple(norm_phones), clean_name or None, clean_org or None, raw)
    if ids.is_empty():
        raise InvalidIdentifier("identifiers: give at least one email, phone or name")
    return ids
