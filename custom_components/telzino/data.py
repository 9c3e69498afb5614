"""The coordinator's data: what the last reading says of each agent."""

from dataclasses import dataclass
from typing import Self, override

from .api import RegistrationState, RegistrationStatus, TelzinoError
from .history import Reading


@dataclass(frozen=True, slots=True)
class StatusError:
    """Why an agent's status could not be read.

    Unlike the exception it comes from, it compares by value: two polls that
    fail the same way are equal, so they write no state.
    """

    kind: type[TelzinoError]
    message: str

    @classmethod
    def from_exception(cls, err: TelzinoError) -> Self:
        """Keep the error's class and message."""
        return cls(type(err), str(err))

    @override
    def __str__(self) -> str:
        """Return the error as a log line or diagnostics show it."""
        return f"{self.kind.__name__}: {self.message}"


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentData:
    """What the last poll learned about one agent."""

    name: str
    # None when this agent's status could not be fetched: its entities are
    # unavailable rather than stale.
    status: RegistrationStatus | None
    error: StatusError | None = None
    # What "Registered" means: the agent receives calls now. True while
    # registered, and during a refresh until its REGISTER is answered or has
    # timed out.
    can_receive_calls: bool = False

    @property
    def held(self) -> bool:
        """Whether it takes calls without being registered: a binding's hold, until a deadline."""
        return (
            self.can_receive_calls
            and self.status is not None
            and not self.status.is_registered
        )

    @property
    def reading(self) -> Reading:
        """What this poll adds to the agent's history."""
        if self.status is None:
            return Reading.UNOBSERVED
        if (
            self.status.enabled is False
            or self.status.state is RegistrationState.UNREGISTERING
        ):
            # Being disabled in Telzino (unREGISTER first): a choice, not a loss.
            return Reading.DISABLED
        return Reading.UP if self.can_receive_calls else Reading.DOWN
