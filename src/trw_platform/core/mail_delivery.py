"""Background delivery of queued mail, with retries, in every server worker.

A commit that queued mail wakes the worker's delivery task at once. The task
also polls the table, so it picks up messages queued by other workers and
retries that come due. Each message is claimed with a conditional update
before it is sent, so two workers never send it at the same time. A worker
that dies mid-send leaves a claim that expires after ``CLAIM_LEASE``, and
the message is sent again: delivery is at least once.
"""

import asyncio
import contextlib
import weakref
from datetime import datetime, timedelta

import structlog
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from trw_platform.core.db import utc_now
from trw_platform.core.mail import (
    FAILED,
    QUEUED,
    SENT,
    SESSION_FLAG,
    Mailer,
    MailMessage,
)

log = structlog.get_logger(__name__)

# Delay before each retry, by the number of attempts made so far.
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
CLAIM_LEASE = timedelta(minutes=2)
BATCH_SIZE = 20
POLL_SECONDS = 5.0

_running: "weakref.WeakSet[MailDelivery]" = weakref.WeakSet()


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(SESSION_FLAG, False):
        for delivery in list(_running):
            delivery.wake()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(SESSION_FLAG, None)


class MailDelivery:
    """Deliver queued mail through one backend until stopped."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.mailer = mailer
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="mail-delivery")
        _running.add(self)
        log.info("mail.delivery_started", backend=self.mailer.name)

    async def stop(self) -> None:
        _running.discard(self)
        if self._task is None:
            return
        # The flag and the event end the loop even when a database driver
        # swallows the cancellation in the middle of a delivery pass.
        self._stopping = True
        self._wake.set()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        log.info("mail.delivery_stopped")

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.deliver_due()
            except Exception:
                log.exception("mail.delivery_pass_failed")
            # NOTE: asyncio.timeout, not wait_for: in Python 3.11 wait_for can
            # swallow a cancellation that arrives as the event is set, and
            # stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Try every message that is due once; returns how many were sent."""
        sent = 0
        for message in await self._claim_due():
            sent += await self._deliver(message)
        return sent

    async def _claim_due(self) -> list[MailMessage]:
        now = utc_now()
        async with self.sessionmaker() as session:
            candidates = await session.scalars(
                select(MailMessage)
                .where(MailMessage.status == QUEUED, MailMessage.next_attempt_at <= now)
                .order_by(MailMessage.next_attempt_at)
                .limit(BATCH_SIZE)
            )
            claimed = [m for m in candidates if await _claim(session, m, now)]
            await session.commit()
        return claimed

    async def _deliver(self, message: MailMessage) -> int:
        try:
            await self.mailer.send(message)
        except Exception as exc:
            await self._record_failure(message, exc)
            return 0
        await self._update(
            message,
            status=SENT,
            sent_at=utc_now(),
            backend=self.mailer.name,
            last_error=None,
            **({} if self.mailer.keeps_body else {"body": ""}),
        )
        log.info("mail.sent", message_id=message.id, backend=self.mailer.name)
        return 1

    async def _record_failure(self, message: MailMessage, exc: Exception) -> None:
        # NOTE: mail server errors often quote the recipient address, so the
        # log names only the error type; the full text goes to the table.
        error = f"{type(exc).__name__}: {exc}"[:500]
        if message.attempts >= MAX_ATTEMPTS:
            await self._update(message, status=FAILED, last_error=error)
            log.error(
                "mail.failed",
                message_id=message.id,
                attempts=message.attempts,
                error_type=type(exc).__name__,
            )
            return

        delay = RETRY_DELAYS[message.attempts - 1]
        await self._update(message, next_attempt_at=utc_now() + delay, last_error=error)
        log.warning(
            "mail.send_failed",
            message_id=message.id,
            attempt=message.attempts,
            retry_in_seconds=int(delay.total_seconds()),
            error_type=type(exc).__name__,
        )

    async def _update(self, message: MailMessage, **values: object) -> None:
        async with self.sessionmaker() as session:
            await session.execute(
                update(MailMessage).where(MailMessage.id == message.id).values(values)
            )
            await session.commit()


async def _claim(session: AsyncSession, message: MailMessage, now: datetime) -> bool:
    # The attempt counts from the claim, so a message whose sender died
    # mid-send still runs out of attempts.
    result = await session.execute(
        update(MailMessage)
        .where(
            MailMessage.id == message.id,
            MailMessage.status == QUEUED,
            MailMessage.next_attempt_at == message.next_attempt_at,
        )
        .values(next_attempt_at=now + CLAIM_LEASE, attempts=MailMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    message.attempts += 1
    return True
