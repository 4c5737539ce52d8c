"""The REST API for integrations (SPEC §12), mounted at /api/v1/ with its OpenAPI schema at
/api/schema/ and a docs page at /api/docs/. Thin views over the domain verbs: `views/` by topic,
`serializers` (shapes and types only), `permissions` (who may call what, the admin's scope),
`errors` (one error shape), `parsers` (strict JSON), `pagination` (keyset cursors) and
`throttling` (per-token rates)."""
