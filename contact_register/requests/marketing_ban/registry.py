"""Banners by system: ``BANNERS[system] -> Banner`` (``contact_register.requests.writeback.base.Banner``),
the one explicit table of them. A system joins with one line here. A system with no banner
becomes a manual task (``run.ban_everywhere``)."""

from __future__ import annotations

from contact_register.requests.marketing_ban.google import GoogleBanner
from contact_register.requests.marketing_ban.pipedrive import PipedriveBanner
from contact_register.requests.marketing_ban.trustmary import TrustmaryBanner
from contact_register.requests.marketing_ban.without_api import ANSWERS
from contact_register.requests.writeback.base import Banner

BANNERS: dict[str, Banner] = {banner.system: banner for banner in (
    PipedriveBanner(),
    GoogleBanner(),
    TrustmaryBanner(),
    *ANSWERS,  # Netvisor, RT, Matomo, Docue: not applicable; Dealfront, Secapp: manual
)}
