from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EscalationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "escalations"
    verbose_name = "Escalations"

    def ready(self) -> None:
        # Imported here, not at the top: they import models, which load after this module.
        from escalations import receivers
        from escalations.schedule import install_schedules
        from leadops.signals import lead_changed

        lead_changed.connect(receivers.lead_changed, dispatch_uid="escalations.lead_changed")
        # Installing the sweep schedule after migrate is idempotent (see schedule.py).
        post_migrate.connect(install_schedules, sender=self)
