from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class IamGrant:
    """IAM actions the remediator needs. scope='stream': the policies' stream ARNs only. scope='account':
    '*', used only where the Service Authorization Reference lists no resource type for the IAM action."""

    actions: tuple[str, ...]
    scope: Literal["stream", "account"]
    why: str
