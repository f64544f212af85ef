"""`notify admin dead-letters list|requeue` against the real Redis."""

from __future__ import annotations

from typing import cast

import pytest
import redis

from notify.inbox.streams import FIELD, Stream
from tests.cli_runner import invoke
from tests.servers import Servers

EMAIL = Stream("email", "normal")
SMS = Stream("sms", "priority")


@pytest.fixture
def dead_letters(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    monkeypatch.chdir(servers.root)  # no stray .env
    monkeypatch.setenv("NOTIFY_REDIS__URL", servers.redis_url)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells to the terminal width
    client = redis.Redis.from_url(servers.redis_url)
    client.flushdb()
    client.xadd(EMAIL.dead, {b"entry_id": b"1-0", FIELD: b'{"id": "a"}', b"reason": b"not saved after 5 attempts"})
    client.xadd(SMS.dead, {b"entry_id": b"2-0", FIELD: b"{broken", b"reason": b"unparseable entry: JSONDecodeError"})
    return client


def test_list_shows_each_dead_letter_with_its_reason(dead_letters: redis.Redis) -> None:
    result = invoke("admin", "dead-letters", "list")

    assert result.exit_code == 0, result.output
    assert "dead:email:normal" in result.output
    assert "not saved after 5 attempts" in result.output
    assert "dead:sms:priority" in result.output
    assert "2 dead letter(s)" in result.output


def test_requeue_of_one_stream_moves_its_letters_back_to_the_inbox_only(dead_letters: redis.Redis) -> None:
    result = invoke("admin", "dead-letters", "requeue", "--stream", EMAIL.dead)

    assert result.exit_code == 0, result.output
    assert "Requeued 1 dead letter(s)." in result.output
    assert dead_letters.xlen(EMAIL.dead) == 0
    requeued = cast("list[tuple[bytes, dict[bytes, bytes]]]", dead_letters.xrange(EMAIL.inbox))
    assert [fields[FIELD] for _, fields in requeued] == [b'{"id": "a"}']
    assert dead_letters.xlen(SMS.dead) == 1


def test_an_unknown_stream_is_refused(dead_letters: redis.Redis) -> None:
    result = invoke("admin", "dead-letters", "requeue", "--stream", "dead:fax:normal")

    assert result.exit_code == 1
    assert "unknown stream" in result.output
    assert dead_letters.xlen(EMAIL.dead) == 1
