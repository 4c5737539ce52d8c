from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EscalationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "escalations"
    verbose_name = "Escalations"

    def ready(self) -> None:
        from escalations.schedule import install_schedules

        # Installing the sweep schedule after migrate is idempotent (see schedule.py).
        post_migrate.connect(install_schedules, sender=self)
