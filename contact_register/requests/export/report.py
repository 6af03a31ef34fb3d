"""The human-readable answer: one HTML page, in Finnish and then in English, with the art. 15
information from register.yaml, each processor's answer, and every record held.
Everything from data is escaped; the page loads nothing from outside."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import Any

T = {
    "fi": {
        "title": "Tarkastuspyyntöön vastaus (EU:n tietosuoja-asetus 15 artikla)",
        "case": "Asia", "generated": "Laadittu", "expires": "Paketti poistetaan",
        "controller": "Rekisterinpitäjä", "contact": "Yhteyshenkilö",
        "purposes": "Käsittelyn tarkoitukset", "legal_bases": "Oikeusperusteet",
        "categories": "Henkilötietoryhmät", "recipients": "Vastaanottajat ja käsittelijät",
        "disclosures": "Luovutukset", "retention": "Säilytysaika", "sources": "Tietolähteet",
        "rights": "Oikeutesi", "complaint": "Valitusoikeus", "answers": "Vastaukset järjestelmittäin",
        "system": "Järjestelmä", "holds": "Mitä siellä säilytetään", "answer": "Vastaus",
        "found": "Tietoja löytyi: {n} tietuetta", "not_found": "Ei tietoja",
        "failed": "Haku epäonnistui, selvitämme käsin", "manual_open": "Tarkistetaan käsin (manuaalinen tehtävä)",
        "nothing": "Emme säilytä sinusta tietoja yhdessäkään järjestelmässä, josta tiedot voidaan hakea automaattisesti.",
        "held": "Sinusta säilytetyt tiedot", "profile": "Yhdistetty henkilötieto (tietovarasto)",
        "security": "Tietojen suojaus", "response": "Vastausaika", "ambiguous":
            "{n} antamaasi tunnistetta (esim. yhteinen sähköpostiosoite) kuuluu myös muille; niihin liittyvät tiedot selvitetään käsin.",
        "notes": "Huomiot", "files": "Alkuperäisiä tiedostoja paketissa: {n}",
    },
    "en": {
        "title": "Answer to your access request (GDPR article 15)",
        "case": "Case", "generated": "Generated", "expires": "Package deleted on",
        "controller": "Controller", "contact": "Contact",
        "purposes": "Purposes of processing", "legal_bases": "Legal bases",
        "categories": "Categories of personal data", "recipients": "Recipients and processors",
        "disclosures": "Disclosures", "retention": "Retention", "sources": "Sources of the data",
        "rights": "Your rights", "complaint": "Right to complain", "answers": "Answers per system",
        "system": "System", "holds": "What it holds", "answer": "Answer",
        "found": "Data found: {n} records", "not_found": "Nothing held",
        "failed": "The search failed; we check by hand", "manual_open": "Checked by hand (manual task)",
        "nothing": "We hold no data about you in any system that can be searched automatically.",
        "held": "The data we hold about you", "profile": "Combined person data (warehouse)",
        "security": "Security", "response": "Response time", "ambiguous":
            "{n} of the identifiers you gave (e.g. a shared mailbox) also belong to others; what relates to them is checked by hand.",
        "notes": "Notes", "files": "Original files in the package: {n}",
    },
}


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"<pre>{_e(json.dumps(value, ensure_ascii=False, indent=1, default=str))}</pre>"
    if isinstance(value, datetime):
        return _e(value.isoformat())
    return _e(value)


def _items(items: list[dict], lang: str, extra: str | None = None) -> str:
    out = []
    for it in items:
        prefix = f"<b>{_e(it[extra])}</b>: " if extra and it.get(extra) else ""
        out.append(f"<li>{prefix}{_e(it[lang])}</li>")
    return "<ul>" + "".join(out) + "</ul>"


def _answer(res: Any, t: dict) -> str:
    if res is None:
        return _e(t["manual_open"])
    text = t[res.state].format(n=res.count()) if res.state in t else res.state
    parts = [_e(text)]
    if res.records:
        parts.append(_e(", ".join(f"{k}: {len(v)}" for k, v in sorted(res.records.items()) if v)))
    if res.attachments:
        parts.append(_e(t["files"].format(n=len(res.attachments))))
    for note in res.notes:
        parts.append(f"<small>{_e(note)}</small>")
    if res.error:
        parts.append(f"<small>{_e(res.error)}</small>")
    return "<br>".join(parts)


def _section(lang: str, *, case: dict, subject: Any, results: dict, desc: dict, generated_at: datetime,
             expires_at: datetime) -> str:
    t = T[lang]
    c, contact = desc["controller"], desc["contact"]
    po = contact["privacy_officer"]
    h = [f'<section lang="{lang}"><h1>{_e(t["title"])}</h1>',
         f"<p>{_e(t['case'])}: <code>{_e(case['case_id'])}</code> · {_e(t['generated'])}: "
         f"{_e(generated_at.strftime('%Y-%m-%d %H:%M UTC'))} · {_e(t['expires'])}: {_e(expires_at.strftime('%Y-%m-%d'))}</p>",
         f"<h2>{_e(t['controller'])}</h2><p>{_e(c['name'])} ({_e(c['business_id'])}), {_e(c['address'])}</p>",
         f"<h2>{_e(t['contact'])}</h2><p>{_e(po['name'])}, {_e(po['role'][lang])}, {_e(po['email'])}</p>"]
    if "how_to_request" in contact:
        h.append(f"<p>{_e(contact['how_to_request'][lang])}</p>")
    h.append(f"<h2>{_e(t['answers'])}</h2>")
    if not any(r.count() for r in results.values()) and not subject.profiles:
        h.append(f"<p><b>{_e(t['nothing'])}</b></p>")
    if subject.ambiguous_identifiers:
        h.append(f"<p>{_e(t['ambiguous'].format(n=subject.ambiguous_identifiers))}</p>")
    h.append(f"<table><tr><th>{_e(t['system'])}</th><th>{_e(t['holds'])}</th><th>{_e(t['answer'])}</th></tr>")
    listed = set()
    for p in desc["processors"]:
        listed.add(p["system"])
        h.append(f'<tr class="processor" data-system="{_e(p["system"])}"><td>{_e(p["name"])}</td>'
                 f"<td>{_e(p['holds'][lang])}</td><td>{_answer(results.get(p['system']), t)}</td></tr>")
    for system, res in results.items():
        if system not in listed:
            h.append(f'<tr class="processor" data-system="{_e(system)}"><td>{_e(system)}</td><td></td>'
                     f"<td>{_answer(res, t)}</td></tr>")
    h.append("</table>")
    h.append(f"<h2>{_e(t['purposes'])}</h2>{_items(desc['purposes'], lang)}")
    h.append(f"<h2>{_e(t['legal_bases'])}</h2>{_items(desc['legal_bases'], lang, 'article')}")
    h.append(f"<h2>{_e(t['categories'])}</h2>{_items(desc['data_categories'], lang)}")
    h.append(f"<h2>{_e(t['recipients'])}</h2><ul>"
             + "".join(f"<li><b>{_e(p['name'])}</b>: {_e(p['holds'][lang])}</li>" for p in desc["processors"])
             + "</ul>")
    if "disclosures" in desc:
        h.append(f"<h2>{_e(t['disclosures'])}</h2><p>{_e(desc['disclosures'][lang])}</p>")
    h.append(f"<h2>{_e(t['retention'])}</h2>{_items(desc['retention'], lang)}")
    h.append(f"<h2>{_e(t['sources'])}</h2>{_items(desc['sources'], lang)}")
    h.append(f"<h2>{_e(t['rights'])}</h2>{_items(desc['rights'], lang)}")
    if "response_time" in desc:
        h.append(f"<h2>{_e(t['response'])}</h2><p>{_e(desc['response_time'][lang])}</p>")
    if "security" in desc:
        h.append(f"<h2>{_e(t['security'])}</h2><p>{_e(desc['security'][lang])}</p>")
    h.append(f"<h2>{_e(t['complaint'])}</h2><p>{_e(desc['complaint'][lang])}</p>")
    h.append("</section>")
    return "\n".join(h)


def _records_html(subject: Any, results: dict, lang: str) -> str:
    t = T[lang]
    h = [f'<section class="records"><h2>{_e(T["fi"]["held"])} / {_e(T["en"]["held"])}</h2>']
    if subject.profiles:
        h.append(f"<h3>{_e(t['profile'])}</h3>")
        for p in subject.profiles:
            h.append("<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_value(v)}</td></tr>" for k, v in p.items())
                     + "</table>")
    for system, res in results.items():
        for kind, recs in sorted(res.records.items()):
            if not recs:
                continue
            h.append(f"<h3>{_e(system)} · {_e(kind)} ({len(recs)})</h3>")
            for r in recs:
                h.append('<table class="record">' + "".join(
                    f"<tr><th>{_e(k)}</th><td>{_value(v)}</td></tr>" for k, v in r.items() if v not in (None, "", [], {})
                ) + "</table>")
        for a in res.attachments:
            h.append(f"<p>attachments/{_e(system)}/{_e(a.name)} ({len(a.data)} B)</p>")
    h.append("</section>")
    return "\n".join(h)


def render_report(*, case: dict, subject: Any, results: dict, desc: dict, generated_at: datetime,
                  expires_at: datetime) -> str:
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:.5em 0;width:100%}td,th{border:1px solid #ccc;padding:.3em;"
             "text-align:left;vertical-align:top}pre{white-space:pre-wrap;margin:0}section{margin-bottom:3em}")
    body = [
        _section("fi", case=case, subject=subject, results=results, desc=desc, generated_at=generated_at,
                 expires_at=expires_at),
        _section("en", case=case, subject=subject, results=results, desc=desc, generated_at=generated_at,
                 expires_at=expires_at),
        # The records themselves once: field names are the systems' own, in neither language.
        _records_html(subject, results, "fi"),
    ]
    return ('<!DOCTYPE html><html lang="fi"><head><meta charset="utf-8">'
            f"<title>{_e(case['case_id'])}</title><style>{style}</style></head><body>"
            + "\n".join(body) + "</body></html>")
