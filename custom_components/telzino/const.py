"""Constants of the Telzino integration."""

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "telzino"
LOGGER = logging.getLogger(__package__)

MANUFACTURER: Final = "Telzino"
DASHBOARD_URL: Final = "https://dashboard.telzino.com"

# Config entry data (keys and values, not secrets).
CONF_ACCESS_TOKEN: Final = "access_token"  # noqa: S105
CONF_API_URL: Final = "api_url"
CONF_AUTH_TYPE: Final = "auth_type"
CONF_CLIENT_ID: Final = "client_id"
CONF_CLIENT_SECRET: Final = "client_secret"  # noqa: S105
AUTH_CREDENTIALS: Final = "credentials"
AUTH_TOKEN: Final = "token"  # noqa: S105

# Config entry options.
CONF_AGENTS: Final = "agents"
CONF_ALL_AGENTS: Final = "all_agents"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_WATCH_REFRESH: Final = "watch_refresh"
DEFAULT_SCAN_INTERVAL: Final = 60
MIN_SCAN_INTERVAL: Final = 30
MAX_SCAN_INTERVAL: Final = 3600

# Names change rarely; the agent list is re-read at most this often.
AGENT_LIST_REFRESH: Final = timedelta(hours=1)

# A refresh of a binding whose expiry the API did not give counts as a refresh
# (not a loss) at most this long after the last successful REGISTER was seen.
REFRESH_GRACE: Final = timedelta(minutes=5)
# OpenSIPS refreshes a binding at most one timer interval before it expires,
# often a moment before; a refresh in progress counts as one until its SIP
# transaction would have timed out (32 s) past the old binding's expiry, give
# or take the API's whole-second expiry: 35 s.
REFRESH_REPLY_GRACE: Final = timedelta(seconds=35)

ISSUE_WRONG_CREDENTIALS: Final = "wrong_credentials"
ISSUE_AGENT_NOT_FOUND: Final = "agent_not_found"

# Entity keys renamed since an earlier release: old unique-ID suffix -> new.
UNIQUE_ID_SUFFIX_MIGRATION: Final = {"registration_timeout": "registration_interval"}
