"""Content negotiation: the API answers in JSON only. A request that accepts anything or JSON
(no `Accept`, `*/*`, `application/json`: nearly every integration) is answered by the first
renderer without parsing its `Accept` header; any other header, or `?format=`, is negotiated by
DRF as before (406 when nothing fits)."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation

PLAIN_ACCEPTS = frozenset({"", "*/*", "application/json"})


class JsonFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "").strip()
        first = renderers[0] if renderers else None
        if (
            first is not None
            and first.media_type == "application/json"
            and accept in PLAIN_ACCEPTS
            and format_suffix is None
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
