"""The Celery app: Redis broker, settings from Django (CELERY_*), tasks discovered in the apps.

Workers and beat log through Django's LOGGING (JSON or plain, LOG_FORMAT), each task in its
log context (task id, name, the request that queued it, the member it is about).
"""

import logging.config
import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _django_logging(**_: Any) -> None:
    """Celery's own logging set-up is skipped (a receiver is connected): Django's LOGGING applies."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.task_prerun.connect
def _task_started(**kwargs: Any) -> None:
    from portal import observability

    observability.task_started(**kwargs)


@signals.task_postrun.connect
def _task_finished(**kwargs: Any) -> None:
    from portal import observability

    observability.task_finished(**kwargs)


@signals.before_task_publish.connect
def _task_published(**kwargs: Any) -> None:
    from portal import observability

    observability.task_published(**kwargs)


@signals.beat_init.connect
def _first_heartbeat(sender: Any = None, **_: Any) -> None:
    """Beat's first heartbeat at once, not a minute after it starts: /healthz is green sooner."""
    app.send_task("core.tasks.heartbeat", expires=60)
