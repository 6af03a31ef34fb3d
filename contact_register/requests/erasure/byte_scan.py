"""Search files for a person's identifiers byte by byte: the proof that an erasure left nothing.

``scan(paths, needles)`` walks files and folders and looks for each needle as UTF-8, UTF-16 LE
and UTF-16 BE bytes (emails case-insensitively, as addresses are), also inside the members of
zip files (an export package is deflated, so its raw bytes would hide what it holds).

Findings and errors name the path, the needle's kind and the encoding, never the needle: the
output of a scan goes into test reports and logs.

Derived values too: an unkeyed hash of an identifier identifies the person as well as the
identifier does (anyone can hash a guessed address and compare). So for each normalised email
(lower case) and each phone given in E.164 the scan also looks for the hex md5, sha1 and sha256
(any case), reported as kind ``email-md5``, ``phone-sha256`` ... What we keep after an erasure
may only be keyed (HMAC) hashes.

What bytes alone cannot show: DuckDB compresses string columns (dictionary, FSST), so a live
value is usually not stored verbatim. A DuckDB file is therefore also read through DuckDB
(read-only) and every row of every table searched as text (encoding ``duckdb-rows``). Deleted
rows left in a DuckDB file's free blocks are invisible to the row search and, when compressed,
to the byte search too: that is why the erasure rewrites those files from the kept rows only
(``own_stores.py``) instead of trusting a scan.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import duckdb
import phonenumbers

ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be")
CHUNK = 8 * 1024 * 1024
CASE_INSENSITIVE_KINDS = ("email",)
DUCKDB_MAGIC = b"DUCK"  # at offset 8 of every DuckDB database file
ROWS_PER_READ = 5000

Finding = tuple[str, str, str]  # (path, needle kind, encoding)
DIGESTS = ("md5", "sha1", "sha256")
E164 = re.compile(r"\+[1-9][0-9]{5,14}")


class ScanError(RuntimeError):
    """A path that could not be read (the message names the path, never a needle)."""


def phone_variants(e164: str) -> list[str]:
    """The spellings of one E.164 number that files commonly hold: ``+358401234567``,
    ``00358401234567``, ``0401234567``, ``+358 40 1234567``, ``040 1234567``."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        raise ValueError("phone: not an E.164 number") from None
    national = phonenumbers.national_significant_number(number)
    cc = str(number.country_code)
    out = {
        f"+{cc}{national}", f"00{cc}{national}",
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL).replace(" ", ""),
    }
    return sorted(v for v in out if len(re.sub(r"\D", "", v)) >= 6)


def digest_needles(kind: str, value: str) -> list[tuple[str, str]]:
    """``(kind-algorithm, hex digest)`` of a normalised email (lower case) or an E.164 phone;
    nothing for other kinds or spellings (a national phone spelling is not what is hashed)."""
    if kind == "email":
        normalised = value.strip().lower()
    elif kind == "phone" and E164.fullmatch(value.strip()):
        normalised = value.strip()
    else:
        return []
    return [(f"{kind}-{name}", hashlib.new(name, normalised.encode("utf-8")).hexdigest()) for name in DIGESTS]


def _patterns(needles: Mapping[str, Iterable[str]] | Iterable[tuple[str, str]]) -> list[tuple[str, str, re.Pattern]]:
    if isinstance(needles, Mapping):
        flat = [(kind, value) for kind, values in needles.items() for value in values]
    else:
        flat = list(needles)
    for kind, value in flat:
        if not isinstance(value, str) or len(value.strip()) < 3:
            raise ValueError(f"{kind}: a needle must be text of at least 3 characters")
    digests = [d for kind, value in flat for d in digest_needles(kind, value)]
    hex_kinds = {kind for kind, _ in digests}  # hex digits: any case
    out = []
    seen = set()
    for kind, value in flat + digests:
        flags = re.IGNORECASE if kind in CASE_INSENSITIVE_KINDS or kind in hex_kinds else 0
        for encoding in ENCODINGS:
            key = (kind, encoding, value.lower() if flags else value)
            if key not in seen:
                seen.add(key)
                out.append((kind, encoding, re.compile(re.escape(value.encode(encoding)), flags)))
    return out


def _files(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    for root in paths:
        root = Path(root)
        if root.is_file():
            yield root
        elif root.is_dir():
            for folder, _dirs, names in os.walk(root):
                for name in sorted(names):
                    path = Path(folder) / name
                    if path.is_file() and not path.is_symlink():
                        yield path
        # A path that does not exist holds nothing: an erased export, a store never created.


def _search_stream(read, patterns, longest: int) -> set[tuple[str, str]]:
    """(kind, encoding) pairs found in a stream read in chunks that overlap by the longest needle."""
    found: set[tuple[str, str]] = set()
    tail = b""
    while True:
        chunk = read(CHUNK)
        if not chunk:
            break
        data = tail + chunk
        for kind, encoding, pattern in patterns:
            if (kind, encoding) not in found and pattern.search(data):
                found.add((kind, encoding))
        tail = data[-longest:] if longest else b""
    return found


def _is_duckdb(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return head[8:12] == DUCKDB_MAGIC


def _duckdb_rows(path: Path, patterns, longest: int) -> set[tuple[str, str]]:
    """Search every row of every table of a DuckDB file, as text."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
        found: set[tuple[str, str]] = set()
        for schema, table in tables:
            schema_q, table_q = schema.replace('"', '""'), table.replace('"', '""')
            cur = con.execute(f'SELECT CAST(t AS VARCHAR) FROM "{schema_q}"."{table_q}" AS t')

            def read(_size: int, cur=cur) -> bytes:
                rows = cur.fetchmany(ROWS_PER_READ)
                return "\n".join(r[0] for r in rows).encode("utf-8") + b"\n" if rows else b""

            found |= {(kind, "duckdb-rows") for kind, enc in _search_stream(read, patterns, longest)
                      if enc == "utf-8"}
        return found
    finally:
        con.close()


def scan(paths: Iterable[str | os.PathLike], needles: Mapping[str, Iterable[str]] | Iterable[tuple[str, str]]
         ) -> list[Finding]:
    """Every (path, needle kind, encoding) where some needle of that kind occurs. ``needles`` is
    ``{kind: [values]}`` or ``[(kind, value), ...]``; kinds are free words (``email``, ``phone``,
    ``name``); ``email`` matches case-insensitively; emails and E.164 phones are also looked for
    as hex md5/sha1/sha256 (kinds ``email-md5`` ...). A zip member is reported as
    ``archive.zip!member-<n>`` (member names can be personal: an attachment's file name)."""
    patterns = _patterns(needles)
    if not patterns:
        return []
    longest = max(len(p.pattern) for _, _, p in patterns)
    findings: list[Finding] = []
    for path in _files(paths):
        try:
            with open(path, "rb") as fh:
                hits = _search_stream(fh.read, patterns, longest)
            if _is_duckdb(path):
                hits |= _duckdb_rows(path, patterns, longest)
            findings += [(str(path), kind, enc) for kind, enc in sorted(hits)]
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as zf:
                    for n, member in enumerate(zf.infolist()):
                        with zf.open(member) as fh:
                            hits = _search_stream(fh.read, patterns, longest)
                        findings += [(f"{path}!member-{n}", kind, enc) for kind, enc in sorted(hits)]
        except FileNotFoundError:
            continue  # removed while we walked: nothing left to find
        except (OSError, zipfile.BadZipFile, RuntimeError, duckdb.Error) as exc:
            raise ScanError(f"cannot read {path}: {type(exc).__name__}") from None
    return findings
