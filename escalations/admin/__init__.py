"""The policy console (SPEC §10), one module per topic: SLA policies with a required change
reason, the matrix view and the thresholds; read-only timers with a re-plan action;
reassignments with revert; the notification outbox; API tokens. Every change goes through the
domain (`escalations.org_changes`, `.timers`, `.reassign`)."""

from escalations.admin import notifications, policies, reassignments, timers, tokens

__all__ = ["notifications", "policies", "reassignments", "timers", "tokens"]
