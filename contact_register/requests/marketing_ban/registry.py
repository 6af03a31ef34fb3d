"""Banners by system. A system joins with one line: ``register_banner(TheirBanner())``."""

from __future__ import annotations

from contact_register.requests.marketing_ban.google import GoogleBanner
from contact_register.requests.marketing_ban.pipedrive import PipedriveBanner
from contact_register.requests.marketing_ban.trustmary import TrustmaryBanner
from contact_register.requests.marketing_ban.without_api import BANNERS as ANSWERED_WITHOUT_API
from contact_register.requests.writeback.base import Banner

BANNERS: dict[str, Banner] = {}


def register_banner(banner: Banner) -> None:
    BANNERS[banner.system] = banner


register_banner(PipedriveBanner())
register_banner(GoogleBanner())
register_banner(TrustmaryBanner())
for _banner in ANSWERED_WITHOUT_API:  # Netvisor, RT, Matomo, Docue: not applicable; Dealfront, Secapp: manual
    register_banner(_banner)
