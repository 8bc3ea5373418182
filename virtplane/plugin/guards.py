"""What the plugin refuses so that ``pulumi up`` does only what ``pulumi preview`` showed, and never destroys data
unasked.

- **Data loss** (a live disk no longer declared, a VM replaced): refused by Diff — so ``pulumi preview`` stops
  before ``up`` — and again by Update and by a Create that finishes an interrupted one, with the sentence the CLI
  prints, unless the provider's ``allowDataLoss`` (or ``VIRTPLANE_ALLOW_DATA_LOSS``) allows it.
- **Changes the preview did not show**: the preview compared the inputs with the state Pulumi holds; Update
  reads the live object. A difference between the two (memory changed by hand, a disk attached out of band)
  would be reverted without anyone having seen it: Update applies only what the state-to-inputs diff showed and
  refuses, changing nothing, when the live object differs from the state where it would change something.
"""

from __future__ import annotations

import os
from typing import Any

from virtplane.apply import refuse_data_loss
from virtplane.errors import VirtplaneError
from virtplane.kinds import kind as registered_kind
from virtplane.plan import Action, Plan, PlannedChange, ResourcePlan
from virtplane.providers.base import FieldChange, Rule

ALLOWANCE = ("set allowDataLoss: true on the Endpoint (for the default provider: `pulumi config set "
             "virtplane:allowDataLoss true`) or VIRTPLANE_ALLOW_DATA_LOSS=1")
ENVIRONMENT = "VIRTPLANE_ALLOW_DATA_LOSS"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def flag(value: Any) -> bool | None:
    """``allowDataLoss`` as given (a boolean, or a string from stack config): True/False, None when it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return None


def allowed_by_environment() -> bool:
    return bool(flag(os.environ.get(ENVIRONMENT, "")))


def refuse_unallowed_loss(item: ResourcePlan, allowed: bool) -> None:
    """Raise the CLI's refusal when ``item`` destroys data and that is not allowed."""
    if not allowed:
        refuse_data_loss(Plan(stack="", resources=[item]), ALLOWANCE)


def possible_loss(item: ResourcePlan, unknown_replaces: list[str]) -> list[str]:
    """What a replace forced by fields not known yet (a preview) would destroy, as the plan says it."""
    if not unknown_replaces or not registered_kind(item.kind).holds_data or item.action is Action.REPLACE:
        return []
    changes = [PlannedChange(FieldChange(key, None, None), Rule.REPLACE) for key in unknown_replaces]
    maybe = ResourcePlan(item.kind, item.name, item.endpoint, Action.REPLACE, observed=item.observed, changes=changes)
    return [f"if the values known only at apply time ask for it: {sentence}" for sentence in maybe.data_loss()]


def refuse_unpreviewed(kind: str, name: str, noun: str, planned: list[PlannedChange],
                       previewed: dict[str, FieldChange]) -> None:
    """Raise when a change Update would make starts from a live value the preview did not show (the path is not
    in the state-to-inputs diff, or that diff started from another value)."""
    unseen = [(change.change, previewed.get(change.change.path)) for change in planned
              if change.change.path not in previewed or previewed[change.change.path].old != change.change.old]
    if not unseen:
        return
    details = "; ".join(f"{live.path} is {_shown(live.old)} on the hypervisor but "
                        f"{_shown(seen.old if seen else live.new)} in Pulumi's state" for live, seen in unseen)
    raise VirtplaneError(f"{kind} '{name}': the live {noun} differs from what the preview compared with ({details}); "
                         "updating it would change what no preview showed. Nothing was changed: run `pulumi refresh`, "
                         "then preview again")


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, dict) and "network" in value:
        return f"NIC {value.get('slot')} on {value['network']}"
    if isinstance(value, dict) and "size" in value:
        return f"disk {value.get('slot')} ({value['size']} GiB)"
    return str(value)
