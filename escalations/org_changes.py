"""Org edits that have consequences (SPEC §4, §5, §7), in one place for the admin, the org file
and the API:

- a market's business calendar changed (zone, hours, holidays, extra dates) → the open
  business-hours timers of that market are re-planned; audited `calendar_changed`;
- an SLA policy saved → a new version; switched off → its open timers are cancelled and the
  policy that matches now starts a fresh one; audited `policy_changed` with what changed;
- the thresholds saved → audited `thresholds_changed` (running timers keep theirs);
- a rep made inactive → their open leads are handed over by the reassignment rules; audited
  `rep_deactivated`.

Every save goes through the model, so django-simple-history records the actor and the reason.
An `OrgChangeSet` collects saves and runs their consequences once everything is saved (`apply`),
all in the caller's transaction: the org file saves a whole document first, because the policy
that takes over from a deactivated one may come later in the same file. The one-object verbs
(`save_market`, `save_policy`, `set_policy_active`, `save_thresholds`, `save_rep`,
`set_rep_active`) are a change set of one."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from audit import log
from audit.models import AuditKind
from escalations import reassign, timers
from escalations.models import SlaPolicy, SlaThresholds
from leadops.actors import resolve_actor
from teams import hours as hours_format
from teams.models import Market, Rep

POLICY_FIELDS = ("state", "market_id", "source_id", "window", "clock", "active")
THRESHOLD_FIELDS = ("warn_percent", "breach_percent", "reassign_percent")
HISTORY_REASON_LENGTH = 100  # simple-history's history_change_reason column


@dataclass
class ChangeResult:
    """What the consequences did, for the caller's message ("3 open timers re-planned")."""

    replanned: int = 0
    cancelled: int = 0
    reassigned: int = 0
    unassigned: int = 0
    notes: list[str] = field(default_factory=list)


def _fingerprint(market: Market | None) -> tuple | None:
    if market is None:
        return None
    try:
        return market.calendar_fingerprint()
    except hours_format.HoursError:  # a row saved before validation existed
        return ("unreadable",)


def _diff(before: dict | None, obj, names) -> dict:
    if before is None:
        return {}
    return {
        name: [before[name], getattr(obj, name)]
        for name in names
        if before[name] != getattr(obj, name)
    }


class OrgChangeSet:
    """Saves of org objects whose consequences run together in `apply()` (once, at the end)."""

    def __init__(self, *, actor, reason: str):
        self.actor = resolve_actor(actor)
        self.reason = (reason or "").strip()
        self._markets: list[tuple[Market, dict]] = []
        self._policies: list[tuple[SlaPolicy, dict]] = []
        self._thresholds: list[tuple[SlaThresholds, dict]] = []
        self._deactivated: list[Rep] = []
        self.applied = False

    def _save(self, obj, **kwargs) -> None:
        obj._history_user = self.actor.user
        obj._change_reason = self.reason[:HISTORY_REASON_LENGTH]
        obj.save(**kwargs)

    def save_market(self, market: Market) -> None:
        old = Market.objects.filter(pk=market.pk).first() if market.pk else None
        before = _fingerprint(old)
        self._save(market)
        if old is not None and before != _fingerprint(market):
            self._markets.append((market, {"before": before}))

    def save_policy(self, policy: SlaPolicy) -> None:
        before = None
        if policy.pk is not None:
            before = SlaPolicy.objects.filter(pk=policy.pk).values(*POLICY_FIELDS).first()
        self._save(policy)
        self._policies.append((policy, {"before": before}))

    def set_policy_active(self, policy: SlaPolicy, active: bool) -> None:
        policy.active = active
        self.save_policy(policy)

    def save_thresholds(self, thresholds: SlaThresholds) -> None:
        before = SlaThresholds.objects.filter(pk=1).values(*THRESHOLD_FIELDS).first()
        self._save(thresholds)
        self._thresholds.append((thresholds, {"before": before}))

    def save_rep(self, rep: Rep) -> None:
        """Save the rep; going inactive hands their open leads over in `apply` (the flag is set
        there, by `reassign.deactivate_rep`, with its own history record)."""
        was_active = (
            Rep.objects.filter(pk=rep.pk).values_list("active", flat=True).first()
            if rep.pk
            else None
        )
        deactivating = bool(was_active) and not rep.active
        if deactivating:
            rep.active = True
        self._save(rep)
        if deactivating:
            self._deactivated.append(rep)

    def set_rep_active(self, rep: Rep, active: bool) -> None:
        rep.active = active
        self.save_rep(rep)

    # --- consequences -----------------------------------------------------------------------

    def apply(self) -> ChangeResult:
        """Run every consequence and write the audit events, in the caller's transaction."""
        if self.applied:
            raise RuntimeError("an org change set is applied once")
        self.applied = True
        result = ChangeResult()
        with transaction.atomic():
            for market, facts in self._markets:
                self._calendar_changed(market, facts, result)
            for policy, facts in self._policies:
                self._policy_changed(policy, facts, result)
            for thresholds, facts in self._thresholds:
                self._thresholds_changed(thresholds, facts)
            for rep in self._deactivated:
                self._rep_deactivated(rep, result)
        return result

    def _calendar_changed(self, market: Market, facts: dict, result: ChangeResult) -> None:
        replanned = timers.replan_market(
            market, actor=self.actor, reason=f"calendar of {market.code} changed: {self.reason}"
        )
        result.replanned += replanned
        result.notes.append(f"re-planned {replanned} open timers of {market.code}")
        log.record(
            AuditKind.CALENDAR_CHANGED,
            actor=self.actor,
            details={
                "market": market.code,
                "market_id": market.pk,
                "reason": self.reason,
                "replanned_timers": replanned,
            },
        )

    def _policy_changed(self, policy: SlaPolicy, facts: dict, result: ChangeResult) -> None:
        before = facts["before"]
        changes = _diff(before, policy, POLICY_FIELDS)
        cancelled = 0
        if before is not None and before["active"] and not policy.active:
            cancelled = timers.deactivate_policy(policy, actor=self.actor, reason=self.reason)
            result.cancelled += cancelled
            result.notes.append(f"cancelled {cancelled} timers of deactivated {policy}")
        log.record(
            AuditKind.POLICY_CHANGED,
            actor=self.actor,
            policy=policy,
            details={
                "policy": str(policy),
                "created": before is None,
                "changes": changes,
                "reason": self.reason,
                "cancelled_timers": cancelled,
            },
        )

    def _thresholds_changed(self, thresholds: SlaThresholds, facts: dict) -> None:
        log.record(
            AuditKind.THRESHOLDS_CHANGED,
            actor=self.actor,
            details={
                "thresholds": thresholds.as_dict(),
                "changes": _diff(facts["before"], thresholds, THRESHOLD_FIELDS),
                "reason": self.reason,
            },
        )

    def _rep_deactivated(self, rep: Rep, result: ChangeResult) -> None:
        handed = reassign.deactivate_rep(rep, actor=self.actor)
        result.reassigned += handed.reassigned
        result.unassigned += handed.unassigned
        result.notes.append(
            f"{rep.email} made inactive: {handed.reassigned} leads reassigned, "
            f"{handed.unassigned} left unowned"
        )
        log.record(
            AuditKind.REP_DEACTIVATED,
            actor=self.actor,
            owner=rep,
            team=rep.team,
            details={
                "rep": rep.name,
                "rep_id": rep.pk,
                "reason": self.reason,
                "reassigned": handed.reassigned,
                "unassigned": handed.unassigned,
            },
        )


# --- one object at a time (the admin's change forms, the API) -----------------------------------


def _one(actor, reason: str, save) -> ChangeResult:
    with transaction.atomic():
        changes = OrgChangeSet(actor=actor, reason=reason)
        save(changes)
        return changes.apply()


def save_market(market: Market, *, actor, reason: str) -> ChangeResult:
    return _one(actor, reason, lambda changes: changes.save_market(market))


def save_policy(policy: SlaPolicy, *, actor, reason: str) -> ChangeResult:
    return _one(actor, reason, lambda changes: changes.save_policy(policy))


def set_policy_active(policy: SlaPolicy, active: bool, *, actor, reason: str) -> ChangeResult:
    return _one(actor, reason, lambda changes: changes.set_policy_active(policy, active))


def save_thresholds(thresholds: SlaThresholds, *, actor, reason: str) -> ChangeResult:
    return _one(actor, reason, lambda changes: changes.save_thresholds(thresholds))


def save_rep(rep: Rep, *, actor, reason: str) -> ChangeResult:
    return _one(actor, reason, lambda changes: changes.save_rep(rep))


def set_rep_active(rep: Rep, active: bool, *, actor, reason: str) -> ChangeResult:
    return _one(actor, reason, lambda changes: changes.set_rep_active(rep, active))


class PolicyInUse(Exception):
    """The policy has timers (open or finished) that name it: deactivate it instead."""


def policy_in_use(policy: SlaPolicy) -> bool:
    return policy.timers.exists()


def delete_policy(policy: SlaPolicy, *, actor, reason: str) -> None:
    """Delete a policy no timer ever ran on (a superuser's cleanup of a mistake), with the
    reason in its history and an audited `policy_changed`. A policy with timers keeps them
    explainable: it can only be deactivated (`set_policy_active`)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("Say why the policy is deleted.")
    who = resolve_actor(actor)
    with transaction.atomic():
        locked = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
        if policy_in_use(locked):
            raise PolicyInUse(
                f"{locked} has SLA timers that name it; deactivate it instead of deleting it."
            )
        log.record(
            AuditKind.POLICY_CHANGED,
            actor=who,
            policy=locked,
            details={
                "policy": str(locked),
                "deleted": True,
                "fields": {name: getattr(locked, name) for name in POLICY_FIELDS},
                "reason": reason,
            },
        )
        locked._history_user = who.user
        locked._change_reason = reason[:HISTORY_REASON_LENGTH]
        locked.delete()
