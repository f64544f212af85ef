"""Enforce the rate limit and the daily limit of a request in one Redis round trip (DESIGN §2.1 step 3).

The rate limit is GC Notify's sliding window: a sorted set per service and key type holding one member per
request of the last interval; rejected requests count too, so a client that keeps hammering stays limited.
The daily counters are keyed by the UTC date and only move when the request is accepted. Both live in one Lua
script, so a request costs a single command and two racing API processes can never both take the last slot.
Keys share a `{service_id}` hash tag so the script also runs on Redis Cluster.

The script can also add the accepted request's inbox entry (`append`), so a POST is one command instead of two.
The stream's key has no such hash tag: that is for a Redis that does not route keys by slot
(`NOTIFY_REDIS__APPEND_IN_LIMITS_SCRIPT`). The script goes by its SHA (`EVALSHA`), so it can ride in the API's
command batches; when Redis has forgotten it (a restart, `SCRIPT FLUSH`) the request sends the body once with
`EVAL`, which also caches it again.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from redis.exceptions import NoScriptError

from notify.limits.exceptions import RequestRateLimitError, TooManyRequestsError
from notify.redis import Commands
from notify.services.context import ServiceContext

# KEYS[1]: the request window (sorted set); KEYS[2], when ARGV[8] is '1': today's counter for the notification
# type; the last key, when ARGV[9] is given: the stream an accepted request's entry is added to.
# ARGV: now (ms), window (ms), rate limit, member, daily limit, units, counter TTL (s), count daily ('1' or '0'),
# then optionally the entry's field and value.
# Returns {0, count} accepted, {1, retry_after_ms} over the rate limit, {2, used} over the daily limit.
_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
local count = redis.call('ZCARD', KEYS[1])
if count > limit then
  local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return {1, tonumber(oldest[2]) + window - now}
end
if ARGV[8] == '1' then
  local units = tonumber(ARGV[6])
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used + units > tonumber(ARGV[5]) then
    return {2, used}
  end
  redis.call('INCRBY', KEYS[2], units)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[7]))
end
if ARGV[9] then
  redis.call('XADD', KEYS[#KEYS], '*', ARGV[9], ARGV[10])
end
return {0, count}
"""

SCRIPT_SHA = hashlib.sha1(_LUA.encode()).hexdigest()  # Redis names scripts by their SHA-1


class Append(NamedTuple):
    """A stream entry to add when the request is accepted: the stream, then its one field and value."""

    stream: str
    field: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Usage:
    """What the request left behind: requests in the window, and whether the daily counter moved."""

    requests_in_window: int


def rate_key(service_id: object, key_type: str) -> str:
    """Return the sorted set holding a service's recent requests for one key type."""
    return f"limits:{{{service_id}}}:rate:{key_type}"


def daily_key(service_id: object, notification_type: str, day: str) -> str:
    """Return the counter of what a service sent on one UTC day (`YYYY-MM-DD`)."""
    return f"limits:{{{service_id}}}:daily:{notification_type}:{day}"


async def _run_script(redis: Commands, keys: list[str], args: list[str | int | bytes]) -> list[int]:
    try:
        reply: list[int] = await redis.execute_command("EVALSHA", SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:
        reply = await redis.execute_command("EVAL", _LUA, len(keys), *keys, *args)
    return reply


@functools.lru_cache(maxsize=4)
def _day(today: date) -> tuple[str, float]:
    """Return a UTC day's key part and the timestamp of the midnight that ends it."""
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return today.isoformat(), midnight.timestamp()


class _Members:
    """Unique sorted-set members without a random read per request: a random prefix per process, then a count."""

    def __init__(self) -> None:
        self.prefix = ""
        self.counter = itertools.count()
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)  # a forked API worker must not repeat its parent's members

    def reseed(self) -> None:
        """Start a new prefix and count."""
        self.prefix = os.urandom(6).hex()
        self.counter = itertools.count()


_members = _Members()


def _daily_limit(service: ServiceContext, notification_type: str) -> int:
    return service.email_daily_limit if notification_type == "email" else service.sms_daily_limit


async def enforce(
    redis: Commands,
    service: ServiceContext,
    key_type: str,
    notification_type: str,
    units: int,
    *,
    interval_s: int = 60,
    count_daily: bool = True,
    now: datetime | None = None,
    append: Append | None = None,
) -> Usage:
    """Count one request against the rate limit and `units` against today's limit, or raise a 429.

    Test keys are rate limited (per key type, like every key) but never counted against the daily limits;
    `count_daily=False` skips the daily counter for other reasons (simulated recipients). `append` is added to
    its stream, in the same script, only when the request is accepted. Redis errors propagate: the caller turns
    them into a 503.
    """
    now = now or datetime.now(UTC)
    timestamp = now.timestamp()
    now_ms = int(timestamp * 1000)
    day, midnight = _day(now.date())
    keys = [rate_key(service.id, key_type)]
    daily = count_daily and key_type != "test"
    if daily:
        keys.append(daily_key(service.id, notification_type, day))
    to_midnight_s = max(1, math.ceil(midnight - timestamp))
    daily_limit = _daily_limit(service, notification_type)
    member = f"{now_ms}-{_members.prefix}-{next(_members.counter)}"
    args: list[str | int | bytes] = [
        now_ms,
        interval_s * 1000,
        service.rate_limit,
        member,
        daily_limit,
        units,
        to_midnight_s + 3600,
        "1" if daily else "0",
    ]
    if append is not None:
        keys.append(append.stream)
        args += [append.field, append.value]
    outcome, value = await _run_script(redis, keys, args)
    if outcome == 1:
        retry_after_s = max(1, math.ceil(int(value) / 1000))
        raise RequestRateLimitError(key_type, service.rate_limit, interval_s, retry_after_s)
    if outcome == 2:
        raise TooManyRequestsError(
            notification_type, daily_limit, restricted=service.restricted, retry_after_s=to_midnight_s
        )
    return Usage(requests_in_window=int(value))
