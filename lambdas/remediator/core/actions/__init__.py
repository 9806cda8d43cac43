"""The action registry. Adding an action: subclass Action, add its policy block to ActionsPolicy, register it."""

from remediator.core.actions.base import Action, ActionPolicy, IamGrant, ValidationContext
from remediator.core.actions.reshard import ReshardAction, ReshardPolicy

REGISTRY: dict[str, Action] = {action.name: action for action in (ReshardAction(),)}

__all__ = ["REGISTRY", "Action", "ActionPolicy", "IamGrant", "ReshardPolicy", "ValidationContext"]
