"""Settings for the test suite: the same as production plus inline tasks and fast hashing."""

from leadops.settings import *  # noqa: F403
from leadops.settings import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "sync": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SLACK_BOT_TOKEN = ""
SLACK_SIGNING_SECRET = "test-signing-secret"
SITE_URL = "http://testserver"
# No pacing per destination across tests (real time, one process): the tests of pacing set it.
NOTIFY_RATE_PER_SECOND = 0.0
