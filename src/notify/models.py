"""Every table's model, imported in one place so metadata (alembic, tests) sees them all."""

from notify.auth.models import ApiKey
from notify.db import Base
from notify.notifications.models import Notification
from notify.services.models import Service
from notify.templates.models import Template, TemplateVersion

__all__ = ["ApiKey", "Base", "Notification", "Service", "Template", "TemplateVersion"]
