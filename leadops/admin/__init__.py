"""Admin for leads (`leads`, with the action pages of `lead_actions`), sources and activities."""

from leadops.admin import activities, leads, sources

__all__ = ["activities", "leads", "sources"]
