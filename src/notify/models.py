"""Every table's model, imported in one place so metadata (alembic, tests) sees them all."""

from notify.auth.models import ApiKey
from notify.callbacks.models import ServiceCallback
from notify.db import Base
from notify.jobs.models import Job, JobRow
from notify.notifications.models import Notification
from notify.receipts.models import Complaint
from notify.services.models import Service, ServiceEmailReplyTo, ServiceSafelist, ServiceSmsSender
from notify.templates.models import Template, TemplateVersion

__all__ = [
    "ApiKey",
    "Base",
    "Complaint",
    "Job",
    "JobRow",
    "Notification",
    "Service",
    "ServiceCallback",
    "ServiceEmailReplyTo",
    "ServiceSafelist",
    "ServiceSmsSender",
    "Template",
    "TemplateVersion",
]
