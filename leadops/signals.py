"""What the lead lifecycle announces to the apps above it (SPEC §2: a lower layer announces, a
higher one listens). Sent synchronously inside the lead's transaction, so a receiver's failure
rolls the change back."""

from django.dispatch import Signal

# Sent by `leadops.lifecycle` with `change=` (a `LeadChange`) after every verb that changes a
# lead; `escalations.receivers` routes an unowned new lead and keeps its SLA timer in step.
lead_changed = Signal()
