"""Who a team key, or any key of a trial (restricted) service, may send to (GC Notify's "team and safelist")."""

from __future__ import annotations

from notify.errors import BadRequestError
from notify.services.context import ServiceContext

# GC Notify spells these with a typographic apostrophe (U+2019); clients match on the text.
TEAM_KEY_MESSAGE = "Can\u2019t send to this recipient using a team-only API key"
TRIAL_MODE_MESSAGE = "Can\u2019t send to this recipient when service is in trial mode"


def check_recipient(service: ServiceContext, key_type: str, normalised_to: str) -> None:
    """Refuse a recipient outside the safelist for team keys and for live keys of a trial service."""
    if key_type == "test" or (key_type == "normal" and not service.restricted):
        return
    if normalised_to in service.safelist:
        return
    raise BadRequestError(TEAM_KEY_MESSAGE if key_type == "team" else TRIAL_MODE_MESSAGE)
