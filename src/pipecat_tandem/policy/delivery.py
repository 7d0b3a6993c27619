#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Delivery scheduling: *when* and *how* background outputs reach the user. No I/O.

The :class:`DeliveryScheduler` holds outputs (results, partial results, failure
notices) until their policy allows them out, merges the ones ready together,
re-queues an announcement the user cut off, and accounts for every output:
each ends ``delivered``, ``merged`` (carried by another output's delivery or
superseded by the job's final result), ``into_context`` (cut off too often, see
below), ``dropped_stale``, ``dropped_session_end`` or ``delivery_failed`` (wording or
emitting it raised, see :meth:`DeliveryScheduler.fail`), and none is ever delivered
twice unless its first delivery was cut off.

Rules (the contract the tests check):

* Nothing is emitted between a user start and the matching stop.
* ``when_idle`` outputs are emitted only inside a natural gap
  (:class:`~pipecat_tandem.turns.gap.GapDetector`).
* ``interrupt`` outputs are emitted as soon as the user is not speaking, even over
  the bot (the processor interrupts the bot first).
* ``silent`` outputs go into the context only, as soon as the user is not speaking.
* One spoken delivery is in flight at a time; it is confirmed when the bot finishes
  speaking it, or after ``confirm_timeout_s`` without speech (the model chose not
  to speak, or there is no TTS).
* A delivery the user cuts off goes back to waiting. Only a cut-off after the bot
  began speaking it uses up one of ``max_redeliveries``: before the first word the
  user heard nothing of it, and a user who keeps talking must not cost them the
  result. An output cut off once more after its redeliveries are used up is not
  announced again (the user keeps talking over it) but put into the context
  silently, like a ``silent`` output, so the model can bring it up when asked; it
  is accounted ``into_context``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipecat_tandem.frames import DeliveryPolicy
from pipecat_tandem.policy.wording import DeliveryWording
from pipecat_tandem.turns.gap import GapDetector

STALE_MODES = ("offer", "drop")


class DeliveryFailed(Exception):
    """Wording a delivery raised. Its outputs are still pending: settle them with ``fail``.

    Parameters:
        job_ids: The jobs the delivery would have carried, in order.
        output_ids: The outputs it would have carried.
        reason: What went wrong.
    """

    def __init__(self, job_ids: list[str], output_ids: list[str], reason: str) -> None:
        super().__init__(f"wording the delivery of {', '.join(job_ids)} failed: {reason}")
        self.job_ids = job_ids
        self.output_ids = output_ids
        self.reason = reason


@dataclass
class PendingOutput:
    """A background output waiting for delivery.

    Parameters:
        output_id: Unique id (``job-3#2``).
        job_id: The job that produced it.
        text: Result text, or the error for failures.
        kind: ``result`` or ``failure``.
        is_final: Whether it is the job's final result.
        task: The task as phrased.
        policy: Delivery policy.
        ready_at: Session time it became ready.
        stale: Whether the user cancelled or moved away from the request.
        attempts: How many of its deliveries were cut off after the bot began speaking
            them (each uses up one redelivery).
        unheard_cutoffs: How many were cut off before the bot said a word of them
            (free: the user heard nothing).
        speech_failures: How many of its deliveries the speech service failed to speak
            (see :meth:`DeliveryScheduler.speech_sent`).
        verbatim: Speak the text exactly (a whole delivery of such outputs goes to the TTS).
        into_context: Its redeliveries are used up: it goes into the context silently.
    """

    output_id: str
    job_id: str
    text: str
    kind: str
    is_final: bool
    task: str
    policy: DeliveryPolicy
    ready_at: float
    stale: bool = False
    attempts: int = 0
    unheard_cutoffs: int = 0
    speech_failures: int = 0
    verbatim: bool = False
    into_context: bool = False


@dataclass
class Delivery:
    """One emission decided by the scheduler.

    Parameters:
        items: The outputs it carries (several when merged).
        mode: ``weave`` (interaction model rephrases), ``verbatim`` (TTS) or ``silent``.
        kind: ``delivered``, ``redelivered``, ``offered`` or ``failure`` (of the first
            item), or ``into_context`` (a silent note of outputs cut off too often).
        text: The developer message or the text to speak.
        at: Session time of the decision.
        interrupt_bot: Whether the bot must be interrupted first.
        user_speaking: Speaking state at emission (for the event log).
        bot_speaking: Speaking state at emission (for the event log).
    """

    items: list[PendingOutput]
    mode: str
    kind: str
    text: str
    at: float
    interrupt_bot: bool = False
    user_speaking: bool = False
    bot_speaking: bool = False

    @property
    def job_ids(self) -> list[str]:
        """Jobs carried, in order, without repeats."""
        return list(dict.fromkeys(i.job_id for i in self.items))


@dataclass
class _InFlight:
    delivery: Delivery
    speaking: bool = False
    text_sent: bool = False


@dataclass
class DeliveryScheduler:
    """Decides when each background output is emitted. See the module docstring.

    Args:
        min_gap_s: Shared quiet that makes a natural gap.
        verbatim: Speak outputs verbatim (TTS) instead of weaving them in.
        stale_mode: ``offer`` (briefly offer stale results) or ``drop``.
        max_redeliveries: How often an announcement cut off after its first word is
            delivered again (a cut-off before it is free); then it goes into the context.
        confirm_timeout_s: How long to wait for the bot to speak a delivery.
        wording: Templates for the delivered text.
    """

    min_gap_s: float = 0.5
    verbatim: bool = False
    stale_mode: str = "offer"
    max_redeliveries: int = 2
    confirm_timeout_s: float = 10.0
    wording: DeliveryWording = field(default_factory=DeliveryWording)

    def __post_init__(self) -> None:
        if self.stale_mode not in STALE_MODES:
            raise ValueError(f"stale_mode must be one of {STALE_MODES}, not {self.stale_mode!r}")
        if self.max_redeliveries < 0 or self.confirm_timeout_s <= 0:
            raise ValueError("max_redeliveries must be >= 0 and confirm_timeout_s > 0")
        self.gap = GapDetector(min_gap_s=self.min_gap_s)
        self._pending: list[PendingOutput] = []
        self._in_flight: _InFlight | None = None
        self._finals: set[str] = set()
        self._seq: dict[str, int] = {}
        self._events: list[dict[str, Any]] = []
        self._unspoken: list[Delivery] = []
        self.status: dict[str, str] = {}

    #
    # Inputs
    #

    def add(
        self,
        *,
        job_id: str,
        text: str,
        now: float,
        kind: str = "result",
        is_final: bool = True,
        task: str = "",
        policy: DeliveryPolicy = DeliveryPolicy.WHEN_IDLE,
        stale: bool = False,
        verbatim: bool = False,
    ) -> PendingOutput | None:
        """Queue an output. A second final output for the same job is ignored (never repeated)."""
        final = is_final or kind == "failure"
        if job_id in self._finals:
            self._event("duplicate_ignored", job_id, now)
            return None
        seq = self._seq[job_id] = self._seq.get(job_id, 0) + 1
        item = PendingOutput(
            output_id=f"{job_id}#{seq}",
            job_id=job_id,
            text=text,
            kind=kind,
            is_final=final,
            task=task,
            policy=policy,
            ready_at=now,
            stale=stale,
            verbatim=verbatim,
        )
        if final:
            self._finals.add(job_id)
            for old in [p for p in self._pending if p.job_id == job_id]:
                # A partial still waiting is superseded by the final result.
                self._pending.remove(old)
                self._settle(old, "merged", now, into=item.output_id)
        self._pending.append(item)
        self.status[item.output_id] = "pending"
        return item

    def mark_stale(self, job_id: str, now: float) -> None:
        """The user moved away from this job's request: don't read its outputs as current."""
        for item in self._pending:
            if item.job_id == job_id:
                item.stale = True

    def drop_job(self, job_id: str, now: float, reason: str = "cancelled") -> None:
        """The user cancelled the job: drop whatever of it is still waiting."""
        self._finals.add(job_id)
        for item in [p for p in self._pending if p.job_id == job_id]:
            self._pending.remove(item)
            self._settle(item, "dropped_stale", now, reason=reason)

    def fail(
        self, job_id: str, reason: str, now: float, output_ids: list[str] | None = None
    ) -> None:
        """Delivering this job failed: settle its outputs as ``delivery_failed``, never retried.

        Every output of the job still waiting or in flight is settled, and so is every
        output named in ``output_ids`` (a silent delivery settles at emission, before it
        can fail). Outputs of other jobs merged into the same in-flight delivery go back
        to waiting; a later output of the job is ignored, like one after its final result.

        Args:
            job_id: The job whose delivery failed.
            reason: Why (kept in the accounting event).
            now: Session time.
            output_ids: Outputs of the failed delivery, whatever their status.
        """
        self._finals.add(job_id)
        named = set(output_ids or [])
        failed = [p for p in self._pending if p.job_id == job_id or p.output_id in named]
        flight = self._in_flight
        if flight is not None and job_id in flight.delivery.job_ids:
            self._in_flight = None
            for item in flight.delivery.items:
                if item.job_id == job_id or item.output_id in named:
                    failed.append(item)
                else:
                    self.status[item.output_id] = "pending"
                    self._pending.append(item)
        for item in failed:
            if item in self._pending:
                self._pending.remove(item)
            self._settle(item, "delivery_failed", now, reason=reason)
            named.discard(item.output_id)
        for output_id in sorted(named):
            if self.status.get(output_id) not in (None, "delivery_failed"):
                self.status[output_id] = "delivery_failed"
                self._event("delivery_failed", job_id, now, output_id=output_id, reason=reason)

    def user_started(self, now: float) -> Delivery | None:
        """The user's turn started; a delivery in flight is cut off.

        Each of its outputs waits again: to be delivered again, or, with its
        redeliveries used up, to go into the context silently (see the module docstring).

        Returns:
            The cut-off delivery, if any. Its message should be taken back out of the
            context: otherwise the model would mention the result in its next reply and
            the redelivery would repeat it, or, for an output going into the context,
            the message would still tell the model to announce it now.
        """
        self.gap.user_started(now)
        return self._requeue(now, speech_failed=False)

    def speech_sent(self) -> None:
        """Text for the delivery in flight went to the speech service (or it reported an error).

        From then on, a delivery the bot never starts speaking within
        ``confirm_timeout_s`` was not heard (a TTS that raised or hung), and it is
        delivered again instead of being confirmed; see :meth:`poll`.
        """
        if self._in_flight is not None and not self._in_flight.speaking:
            self._in_flight.text_sent = True

    def _requeue(self, now: float, *, speech_failed: bool) -> Delivery | None:
        flight = self._in_flight
        if flight is None:
            return None
        self._in_flight = None
        heard = flight.speaking
        detail: dict[str, Any] = {"reason": "speech_failed"} if speech_failed else {}
        self._event(
            "delivery_interrupted",
            None,
            now,
            job_ids=flight.delivery.job_ids,
            output_ids=[i.output_id for i in flight.delivery.items],
            heard=heard,
            **detail,
        )
        for item in flight.delivery.items:
            if speech_failed:
                item.speech_failures += 1
                if item.speech_failures > self.max_redeliveries:
                    item.into_context = True
            elif not heard:
                item.unheard_cutoffs += 1
            elif item.attempts < self.max_redeliveries:
                item.attempts += 1
            else:
                item.into_context = True
            self.status[item.output_id] = "pending"
            self._pending.append(item)
        return flight.delivery

    def user_stopped(self, now: float) -> None:
        """The user's turn ended."""
        self.gap.user_stopped(now)

    def bot_started(self, now: float) -> None:
        """The bot started speaking (possibly our delivery)."""
        self.gap.bot_started(now)
        if self._in_flight is not None:
            self._in_flight.speaking = True

    def bot_stopped(self, now: float) -> None:
        """The bot stopped speaking; a delivery it was speaking is confirmed."""
        self.gap.bot_stopped(now)
        if self._in_flight is not None and self._in_flight.speaking:
            self._confirm(now)

    def response_started(self, now: float) -> None:
        """The interaction model started a response."""
        self.gap.response_started(now)

    def response_ended(self, now: float) -> None:
        """The interaction model ended a response."""
        self.gap.response_ended(now)

    #
    # Decisions
    #

    @property
    def pending(self) -> list[PendingOutput]:
        """Outputs waiting, oldest first."""
        return list(self._pending)

    @property
    def in_flight(self) -> Delivery | None:
        """The spoken delivery not yet confirmed, if any."""
        return self._in_flight.delivery if self._in_flight else None

    def poll(self, now: float) -> Delivery | None:
        """The next delivery to emit at ``now``, or None. Call again until None."""
        flight = self._in_flight
        if flight and not flight.speaking and now - flight.delivery.at >= self.confirm_timeout_s:
            if flight.text_sent:
                self._unspoken.append(flight.delivery)
                self._requeue(now, speech_failed=True)
            else:
                self._confirm(now)
        if self.gap.user_speaking or not self._pending:
            return None
        silent = [p for p in self._pending if p.policy is DeliveryPolicy.SILENT]
        if silent:
            return self._emit(silent, "silent", now)
        # Apart from the silent-policy ones: these are worded and accounted differently.
        kept = [p for p in self._pending if p.into_context]
        if kept:
            return self._emit(kept, "silent", now)
        if self._in_flight is not None:
            return None
        urgent = [p for p in self._pending if p.policy is DeliveryPolicy.INTERRUPT]
        if urgent:
            interrupt = self.gap.bot_speaking or self.gap.response_in_flight
            return self._emit(self._filter_stale(urgent, now), None, now, interrupt_bot=interrupt)
        if self.gap.is_gap(now):
            return self._emit(self._filter_stale(list(self._pending), now), None, now)
        return None

    def next_wakeup(self, now: float) -> float | None:
        """The earliest session time at which :meth:`poll` may return something new."""
        times: list[float] = []
        flight = self._in_flight
        if flight and not flight.speaking:
            times.append(flight.delivery.at + self.confirm_timeout_s)
        if self._pending and not self.gap.user_speaking:
            if any(p.policy is DeliveryPolicy.SILENT or p.into_context for p in self._pending) or (
                flight is None and any(p.policy is DeliveryPolicy.INTERRUPT for p in self._pending)
            ):
                times.append(now)
            opens = self.gap.gap_opens_at()
            if opens is not None and flight is None:
                times.append(max(now, opens))
        return min(times) if times else None

    def close(self, now: float) -> None:
        """The session ended: settle everything still waiting or in flight."""
        if self._in_flight is not None:
            self._confirm(now)
        for item in self._pending:
            self._settle(item, "dropped_session_end", now)
        self._pending.clear()

    def drain_unspoken(self) -> list[Delivery]:
        """Deliveries :meth:`poll` put back because the bot never spoke them.

        Take a woven one's message back out of the context before the next
        delivery goes out, as for a cut-off.
        """
        unspoken, self._unspoken = self._unspoken, []
        return unspoken

    def drain_events(self) -> list[dict[str, Any]]:
        """Accounting events since the last call (for the event log)."""
        events, self._events = self._events, []
        return events

    #
    # Internals
    #

    def _filter_stale(self, items: list[PendingOutput], now: float) -> list[PendingOutput]:
        if self.stale_mode == "offer":
            return items
        keep = []
        for item in items:
            if item.stale and item.kind != "failure":
                self._pending.remove(item)
                self._settle(item, "dropped_stale", now, reason="moved on")
            else:
                keep.append(item)
        return keep

    def _emit(
        self,
        items: list[PendingOutput],
        mode: str | None,
        now: float,
        *,
        interrupt_bot: bool = False,
    ) -> Delivery | None:
        if not items:
            return None
        if mode is None:
            verbatim = self.verbatim or all(i.verbatim and not i.stale for i in items)
            mode = "verbatim" if verbatim else "weave"
        first = items[0]
        if first.into_context:
            kind = "into_context"
        elif first.kind == "failure":
            kind = "failure"
        elif first.stale:
            kind = "offered"
        elif first.attempts or first.unheard_cutoffs or first.speech_failures:
            kind = "redelivered"
        else:
            kind = "delivered"
        try:
            if first.into_context:
                text = self.wording.into_context(items)
            elif mode == "silent":
                text = self.wording.silent(items)
            elif mode == "verbatim":
                text = self.wording.spoken(items)
            else:
                text = self.wording.weave(items)
        except Exception as e:
            # Wording is user-supplied templates: a bad one must not lose the outputs
            # unaccounted. They stay pending until the caller settles them with fail().
            job_ids = list(dict.fromkeys(i.job_id for i in items))
            raise DeliveryFailed(
                job_ids, [i.output_id for i in items], f"{type(e).__name__}: {e}"
            ) from e
        for item in items:
            self._pending.remove(item)
        delivery = Delivery(
            items=items,
            mode=mode,
            kind=kind,
            text=text,
            at=now,
            interrupt_bot=interrupt_bot,
            user_speaking=self.gap.user_speaking,
            bot_speaking=self.gap.bot_speaking,
        )
        if mode == "silent":
            for item in items:
                self._settle(item, self._carried_status(delivery, item), now)
        else:
            self._in_flight = _InFlight(delivery, text_sent=mode == "verbatim")
            for item in items:
                self.status[item.output_id] = "in_flight"
        return delivery

    def _confirm(self, now: float) -> None:
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return
        for item in flight.delivery.items:
            self._settle(item, self._carried_status(flight.delivery, item), now)

    @staticmethod
    def _carried_status(delivery: Delivery, item: PendingOutput) -> str:
        if item.into_context:
            # Not heard and not carried by another output's delivery: each of them is
            # in the context on its own account.
            return "into_context"
        # The first output of a merged delivery counts as delivered, the rest as merged
        # into it: each output is accounted exactly once.
        return "delivered" if item is delivery.items[0] else "merged"

    def _settle(self, item: PendingOutput, status: str, now: float, **detail: Any) -> None:
        self.status[item.output_id] = status
        # The event kind "confirmed" marks a delivered output; "delivered" is the emission.
        kind = "confirmed" if status == "delivered" else status
        self._event(kind, item.job_id, now, output_id=item.output_id, **detail)

    def _event(self, kind: str, job_id: str | None, now: float, **detail: Any) -> None:
        self._events.append({"kind": kind, "job_id": job_id, "t": now, **detail})
