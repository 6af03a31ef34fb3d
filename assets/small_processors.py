"""Dagster resources of the smaller processors: Trustmary, Matomo and Docue.

They are not synced into the warehouse (each holds few people); the data-subject jobs read
and change them live through these resources' ``client()``. Secrets and endpoints come in
with ``dagster.EnvVar`` in ``pipelines/definitions.py``; the optional Matomo settings are read
from the environment when a step runs (``MATOMO_USER_ID_FORMAT``: how the tracked site derives
its userId from the e-mail, ``email`` or ``sha256``; ``MATOMO_SITE_IDS``: ``all`` or ``1,3``).
"""

import os

from dagster import ConfigurableResource

from connectors.docue import DEFAULT_BASE_URL as DOCUE_URL, DocueClient
from connectors.matomo import MatomoClient
from connectors.trustmary import DEFAULT_BASE_URL as TRUSTMARY_URL, TrustmaryClient


class TrustmaryResource(ConfigurableResource):
    """Trustmary Integration API: base URL (``https://api.trustmary.io/v1``) and API key."""

    base_url: str = TRUSTMARY_URL
    api_key: str
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def client(self) -> TrustmaryClient:
        return TrustmaryClient(self.base_url or TRUSTMARY_URL, self.api_key,
                               timeout=(self.connect_timeout_s, self.read_timeout_s))


class MatomoResource(ConfigurableResource):
    """Matomo: the instance's URL (``https://matomo.example.fi``) and a token of a user with
    admin access to the sites (sent as a POST parameter)."""

    base_url: str
    token_auth: str
    user_id_format: str = ""
    site_ids: str = ""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0

    def client(self) -> MatomoClient:
        return MatomoClient(
            self.base_url, self.token_auth,
            user_id_format=self.user_id_format or os.environ.get("MATOMO_USER_ID_FORMAT") or "email",
            site_ids=self.site_ids or os.environ.get("MATOMO_SITE_IDS") or "all",
            timeout=(self.connect_timeout_s, self.read_timeout_s),
        )


class DocueResource(ConfigurableResource):
    """Docue v2 API, read-only: base URL (``https://api.docue.com/public/v2``) and API token."""

    base_url: str = DOCUE_URL
    api_token: str
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def client(self) -> DocueClient:
        return DocueClient(self.base_url or DOCUE_URL, self.api_token,
                           timeout=(self.connect_timeout_s, self.read_timeout_s))
