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

# OpenSIPS refreshes a binding 1 to 2 timer intervals (100 s each by default)
# before it expires; the refresh is answered, or times out, within a SIP
# transaction (30 s). So a refresh in progress counts as one (not a loss) until
# 35 s after its REGISTER was sent (lastRegisterSent, whole seconds) ...
REFRESH_REPLY_GRACE: Final = timedelta(seconds=35)
# ... or, when the API gives no lastRegisterSent, until this long after the
# agent was last seen registered.
REFRESH_GRACE: Final = timedelta(minutes=5)

ISSUE_WRONG_CREDENTIALS: Final = "wrong_credentials"
ISSUE_AGENT_NOT_FOUND: Final = "agent_not_found"
ISSUE_REQUEST_BUDGET: Final = "request_budget"
ISSUE_CLOCK_OFFSET: Final = "clock_offset"

# Entity keys renamed since an earlier release: old unique-ID suffix -> new.
UNIQUE_ID_SUFFIX_MIGRATION: Final = {"registration_timeout": "registration_interval"}
