"""The API's views, by topic: `leads` (intake, list, one lead, the lifecycle verbs), `log` (audit
events, notifications, reassignments and their revert) and `org` (the org file)."""
