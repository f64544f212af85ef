"""Service lookups for the hot path: cached in process, loaded from PostgreSQL on a miss."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.auth.keys import SecretBox
from notify.cache import TtlCache
from notify.services import repository
from notify.services.context import KeyContext, SenderContext, ServiceContext


class ServiceDirectory:
    """Answers "who is this service and which keys may sign for it" without touching the database when warm."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], secret_box: SecretBox, ttl_s: float) -> None:
        self._sessionmaker = sessionmaker
        self._secret_box = secret_box
        self._cache: TtlCache[uuid.UUID, ServiceContext | None] = TtlCache(ttl_s)

    async def get(self, service_id: uuid.UUID) -> ServiceContext | None:
        """Return the service with its active keys, or None when it does not exist."""
        return await self._cache.get_or_load(service_id, lambda: self._load(service_id))

    async def _load(self, service_id: uuid.UUID) -> ServiceContext | None:
        async with self._sessionmaker() as session:
            found = await repository.get_with_active_keys(session, service_id)
            safelist = await repository.get_safelist(session, service_id) if found else ()
            senders = await repository.get_senders(session, service_id) if found else ()
        if found is None:
            return None
        service, keys = found
        context = ServiceContext(
            id=service.id,
            name=service.name,
            active=service.active,
            restricted=service.restricted,
            email_from=service.email_from,
            sending_domain=service.sending_domain,
            sms_sender=service.sms_sender,
            rate_limit=service.rate_limit,
            email_daily_limit=service.email_daily_limit,
            sms_daily_limit=service.sms_daily_limit,
            keys=tuple(
                KeyContext(id=key.id, name=key.name, key_type=key.key_type, secret=secret)
                for key in keys
                if (secret := self._secret_box.decrypt(key.secret_encrypted)) is not None
            ),
            safelist=frozenset(safelist),
            reply_tos=tuple(SenderContext(row.id, row.value, row.is_default) for row in senders if row.kind == "email"),
            sms_senders=tuple(SenderContext(row.id, row.value, row.is_default) for row in senders if row.kind == "sms"),
        )
        return context

    def invalidate(self, service_id: uuid.UUID | None) -> None:
        """Forget one service, or everything when `service_id` is None."""
        if service_id is None:
            self._cache.clear()
        else:
            self._cache.discard(lambda key: key == service_id)
