"""Names the fake API, its demo and the tests share: credentials, account, agents."""

from typing import Final

# The API client the fake knows from the start.
CLIENT_ID: Final = "test-client-id"
CLIENT_SECRET: Final = "test-client-secret"  # noqa: S105  # a fake's, not a secret
ORGANIZATION_ID: Final = "00000000-0000-4000-8000-000000000001"

FRONT_DESK: Final = "6f1c2a4e-8d3b-4c5a-9e7f-1a2b3c4d5e01"
SALES_LINE: Final = "6f1c2a4e-8d3b-4c5a-9e7f-1a2b3c4d5e02"
AFTER_HOURS: Final = "6f1c2a4e-8d3b-4c5a-9e7f-1a2b3c4d5e03"
WAREHOUSE: Final = "6f1c2a4e-8d3b-4c5a-9e7f-1a2b3c4d5e04"
