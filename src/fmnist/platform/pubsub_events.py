"""The events port on Google Cloud Pub/Sub (the ``gcp`` profile).

Names follow ``infrastructure/terraform/modules/pubsub``: for a port topic ``predictions``,
prefix ``fmnist`` and subscription ``analytics``

| resource | name |
|---|---|
| topic | ``fmnist-predictions`` |
| subscription | ``fmnist-predictions-analytics`` |
| dead-letter topic | ``fmnist-predictions-dead-letter`` |
| dead-letter subscription | ``fmnist-predictions-dead-letter`` (keeps the dead letters) |

(A Pub/Sub subscription belongs to one topic, and the consumer pulls ``analytics`` on every
topic: hence the topic in the subscription's name.)

Missing ones are created on first use (``create_missing``), with the same settings as the
Terraform module: a dead-letter policy (``max_delivery_attempts``), exactly-once delivery, no
expiry, the labels. Existing ones are used as they are, and so are those the credentials may
not inspect (the publisher and subscriber roles Terraform grants cannot read topics). As on
Pub/Sub, a subscription receives only what is published after it exists: the bus's
``subscriptions`` (the analytics consumer's ``analytics``) are created with each topic, so
events published before the consumer's first pull wait for it as they do in the local queue.

Semantics against :class:`~fmnist.platform.events.LocalEventQueue`:

- :meth:`PubSubEventBus.publish` returns once Pub/Sub has stored the message (the publish
  future resolved); the event id travels as the message attribute ``event_id``. Pub/Sub does not
  deduplicate publishes: publishing an id twice delivers it twice, and consumers deduplicate by
  it (the analytics consumer inserts rows keyed by it). One :meth:`~PubSubEventBus.pull`
  returns an id once even when several copies came in the same batch, and acknowledging the id
  acknowledges every copy.
- :meth:`~PubSubEventBus.pull` leases what it returns for the subscription's ack deadline. An
  event that is not acknowledged comes back when the lease expires (at least once), or at once
  after :meth:`~PubSubEventBus.nack`; a pull meanwhile does not return it again (the local
  queue, which has no leases, does). After ``max_delivery_attempts`` deliveries Pub/Sub moves
  it to the dead-letter topic. A message that is not a JSON object is never handed to the
  caller: it is nacked at once, so it reaches the dead-letter topic after its attempts.
- Order: a pull's batch is sorted by publish time, and messages published with an ordering key
  are delivered in order on subscriptions with message ordering (Pub/Sub guarantees no order
  otherwise).
- :meth:`~PubSubEventBus.ack` works with the ids the same bus pulled (Pub/Sub acknowledges
  deliveries, not messages); other ids are ignored, their events come back after the lease.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from fmnist.platform.events import Event

logger = logging.getLogger(__name__)

DEAD_LETTER_SUFFIX = "dead-letter"
"""Suffix of a topic's dead-letter topic and of the subscription that keeps its messages."""
EVENT_ID = "event_id"
"""Message attribute holding the event id (the consumers' deduplication key)."""
PUBLISHED_AT = "published_at"
"""Message attribute holding the publisher's ISO time of the event."""

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    gexc.Aborted,
    gexc.Cancelled,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.ServiceUnavailable,
    gexc.Unknown,
)
"""Errors retried with exponential backoff (Pub/Sub's retryable status codes)."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")
_ACK_BATCH = 1000
_EXACTLY_ONCE_FAILURE = "EXACTLY_ONCE_ACKID_FAILURE"
_ACK_ATTEMPTS = 4


def resource_name(*parts: str) -> str:
    """``parts`` joined by ``-``, checked against Pub/Sub's rules for topic and subscription
    ids (a letter first, 3-255 of ``[A-Za-z0-9-_.~+%]``, not starting with ``goog``)."""
    name = "-".join(parts)
    if not _NAME.fullmatch(name) or name.lower().startswith("goog"):
        raise ValueError(
            f"{name!r} is not a valid Pub/Sub name: a letter first, then 2-254 of "
            "letters, digits and - _ . ~ + %, not starting with 'goog'"
        )
    return name


@dataclass
class _Delivery:
    """Ack ids of one event id pulled on one subscription path, and when it was pulled."""

    subscription_path: str
    ack_ids: list[str]
    pulled_at: float


class PubSubEventBus:
    """:class:`~fmnist.platform.events.EventBus` on Pub/Sub topics and pull subscriptions.

    Clients can be injected (tests, custom credentials); built here they honour
    ``PUBSUB_EMULATOR_HOST``. Thread-safe.
    """

    def __init__(
        self,
        project: str,
        prefix: str,
        *,
        publisher: Any = None,
        subscriber: Any = None,
        create_missing: bool = True,
        subscriptions: Sequence[str] = (),
        max_delivery_attempts: int = 5,
        ack_deadline_s: int = 60,
        exactly_once: bool = True,
        message_ordering: bool = False,
        retry_backoff_s: tuple[float, float] | None = (10.0, 600.0),
        ordering_key: Callable[[str, Mapping[str, Any]], str | None] | None = None,
        labels: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
        pull_wait_s: float = 1.0,
    ) -> None:
        """Bind to ``project`` with resource names starting ``<prefix>-``.

        With ``create_missing``, a topic is created on its first publish or pull, together with
        the ``subscriptions`` named here (a Pub/Sub subscription receives only what is
        published after it exists: without them, events published before a consumer's first
        pull would never reach it); any other subscription is created on its first pull.

        ``max_delivery_attempts`` (5-100), ``ack_deadline_s`` (10-600), ``exactly_once``,
        ``message_ordering`` and ``retry_backoff_s`` (the redelivery backoff, minimum and
        maximum seconds; None for immediate redelivery) apply to the subscriptions this bus
        creates. ``ordering_key(topic, payload)`` gives the ordering key of an event published
        without one (None: no key). Every RPC is retried on :data:`TRANSIENT_ERRORS` for up to
        ``timeout_s``; a pull on an empty subscription waits up to ``pull_wait_s`` for
        messages.
        """
        if not project:
            raise ValueError("a Pub/Sub event bus needs a GCP project (gcp.project)")
        if not 5 <= max_delivery_attempts <= 100:
            raise ValueError(f"max_delivery_attempts must be 5-100, not {max_delivery_attempts}")
        if not 10 <= ack_deadline_s <= 600:
            raise ValueError(f"ack_deadline_s must be 10-600, not {ack_deadline_s}")
        if retry_backoff_s is not None and not 0 <= retry_backoff_s[0] <= retry_backoff_s[1]:
            raise ValueError(
                f"retry_backoff_s must be (min, max) with min <= max: {retry_backoff_s}"
            )
        resource_name(prefix, "topic")  # fail early on a prefix Pub/Sub would refuse
        self.project = project
        self.prefix = prefix
        self.create_missing = create_missing
        self.subscriptions = tuple(subscriptions)
        for name in self.subscriptions:
            self.subscription_path("topic", name)  # fail early on a name Pub/Sub would refuse
        self.max_delivery_attempts = max_delivery_attempts
        self.ack_deadline_s = ack_deadline_s
        self.exactly_once = exactly_once
        self.message_ordering = message_ordering
        self.retry_backoff_s = retry_backoff_s
        self.labels = dict(labels or {})
        self.timeout_s = timeout_s
        self.pull_wait_s = pull_wait_s
        self._ordering_key = ordering_key
        self._owns_publisher = publisher is None
        self._owns_subscriber = subscriber is None
        self._publisher = publisher if publisher is not None else _default_publisher()
        self._subscriber = subscriber if subscriber is not None else pubsub_v1.SubscriberClient()
        self._retry = Retry(
            predicate=if_exception_type(*TRANSIENT_ERRORS),
            initial=0.1,
            maximum=10.0,
            multiplier=2.0,
            timeout=timeout_s,
        )
        # A pull that waits for messages ends in DeadlineExceeded when none came: not retried.
        self._pull_retry = Retry(
            predicate=if_exception_type(
                *(e for e in TRANSIENT_ERRORS if e is not gexc.DeadlineExceeded)
            ),
            initial=0.1,
            maximum=10.0,
            multiplier=2.0,
            timeout=timeout_s,
        )
        self._lock = threading.Lock()
        self._ready: set[str] = set()
        self._pending: dict[str, dict[str, list[_Delivery]]] = {}

    # -- names -----------------------------------------------------------------------------------

    def topic_path(self, topic: str) -> str:
        """The full name of the port topic ``topic``."""
        return f"projects/{self.project}/topics/{resource_name(self.prefix, topic)}"

    def subscription_path(self, topic: str, subscription: str) -> str:
        """The full name of ``subscription`` on the port topic ``topic``."""
        if subscription == DEAD_LETTER_SUFFIX:
            raise ValueError(f"{DEAD_LETTER_SUFFIX!r} names the dead-letter subscription")
        name = resource_name(self.prefix, topic, subscription)
        return f"projects/{self.project}/subscriptions/{name}"

    def dead_letter_topic_path(self, topic: str) -> str:
        """The full name of the dead-letter topic of ``topic``."""
        return self.topic_path(f"{topic}-{DEAD_LETTER_SUFFIX}")

    def dead_letter_subscription_path(self, topic: str) -> str:
        """The full name of the subscription that keeps the dead letters of ``topic``."""
        name = resource_name(self.prefix, topic, DEAD_LETTER_SUFFIX)
        return f"projects/{self.project}/subscriptions/{name}"

    # -- the port --------------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        event_id: str | None = None,
        ordering_key: str | None = None,
    ) -> str:
        """Publish ``payload`` (as JSON) and wait until Pub/Sub has stored it; returns the event
        id. ``ordering_key`` (else the constructor's ``ordering_key(topic, payload)``) orders
        the events sharing it on subscriptions with message ordering."""
        event_id = event_id or uuid.uuid4().hex
        topic_path = self._ensure_topic(topic)
        for subscription in self.subscriptions:
            self._ensure_subscription(topic, subscription)
        if ordering_key is None and self._ordering_key is not None:
            ordering_key = self._ordering_key(topic, payload)
        key = ordering_key or ""
        data = json.dumps(dict(payload), separators=(",", ":")).encode()
        attributes = {EVENT_ID: event_id, PUBLISHED_AT: datetime.now(UTC).isoformat()}
        future = self._publisher.publish(
            topic_path, data, ordering_key=key, retry=self._retry, **attributes
        )
        try:
            future.result(timeout=self.timeout_s)
        except Exception:
            if key:  # a failed publish pauses its key; the caller's retry must be able to run
                self._publisher.resume_publish(topic_path, key)
            raise
        return event_id

    def pull(self, topic: str, subscription: str, max_events: int = 100) -> list[Event]:
        """Up to ``max_events`` unacknowledged events of ``topic`` for ``subscription``, oldest
        first (leased until acknowledged or the ack deadline passes); empty when none came
        within ``pull_wait_s``."""
        path = self._ensure_subscription(topic, subscription)
        return self._pull(path, topic, subscription, max_events)

    def ack(self, subscription: str, event_ids: Sequence[str]) -> None:
        """Acknowledge the deliveries of ``event_ids`` this bus pulled for ``subscription``
        (idempotent; unknown ids are ignored)."""
        for path, ack_ids in self._take(subscription, event_ids).items():
            self._acknowledge(path, ack_ids)

    def nack(self, subscription: str, event_ids: Sequence[str]) -> None:
        """Give the deliveries of ``event_ids`` back at once (redelivered now, or after the
        subscription's retry backoff; each counts as a delivery attempt)."""
        for path, ack_ids in self._take(subscription, event_ids).items():
            self._modify_deadline(path, ack_ids, 0)

    # -- dead letters ----------------------------------------------------------------------------

    def pull_dead_letters(self, topic: str, max_events: int = 100) -> list[Event]:
        """Events of ``topic`` moved to its dead-letter topic (acknowledge them with
        :meth:`ack_dead_letters` once handled); a message that is not a JSON object comes as
        the payload ``{"raw": <its text>}``."""
        self._ensure_dead_letter(topic)
        path = self.dead_letter_subscription_path(topic)
        return self._pull(path, topic, _dead_letter_key(topic), max_events, dead_letters=True)

    def ack_dead_letters(self, topic: str, event_ids: Sequence[str]) -> None:
        """Acknowledge dead letters of ``topic`` that :meth:`pull_dead_letters` returned."""
        self.ack(_dead_letter_key(topic), event_ids)

    def close(self) -> None:
        """Flush and close the clients this bus created (injected ones are left open)."""
        if self._owns_publisher:
            self._publisher.stop()
        if self._owns_subscriber:
            self._subscriber.close()

    def __enter__(self) -> PubSubEventBus:
        """The bus itself; :meth:`close` on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the clients this bus created."""
        self.close()

    # -- resources -------------------------------------------------------------------------------

    def _ensure_topic(self, topic: str) -> str:
        path = self.topic_path(topic)
        if not self.create_missing or path in self._ready:
            return path
        try:
            self._publisher.get_topic(request={"topic": path}, retry=self._retry)
        except gexc.PermissionDenied:
            _managed_elsewhere(path)
        except gexc.NotFound:
            request = {"name": path, "labels": {**self.labels, "topic": _label(topic)}}
            try:
                self._publisher.create_topic(request=request, retry=self._retry)
                logger.info("created Pub/Sub topic %s", path)
            except gexc.AlreadyExists:
                pass
        with self._lock:
            self._ready.add(path)
        return path

    def _ensure_dead_letter(self, topic: str) -> str:
        dead_topic = self._ensure_topic(f"{topic}-{DEAD_LETTER_SUFFIX}")
        path = self.dead_letter_subscription_path(topic)
        if self.create_missing and path not in self._ready:
            # Messages published to a topic without subscriptions are dropped: this one keeps
            # the dead letters for inspection and replay.
            self._create_subscription(
                {
                    "name": path,
                    "topic": dead_topic,
                    "ack_deadline_seconds": self.ack_deadline_s,
                    "retain_acked_messages": True,
                    "expiration_policy": {},
                    "labels": {**self.labels, "topic": _label(f"{topic}-{DEAD_LETTER_SUFFIX}")},
                }
            )
        return dead_topic

    def _ensure_subscription(self, topic: str, subscription: str) -> str:
        path = self.subscription_path(topic, subscription)
        if not self.create_missing or path in self._ready:
            return path
        topic_path = self._ensure_topic(topic)
        dead_topic = self._ensure_dead_letter(topic)
        request: dict[str, Any] = {
            "name": path,
            "topic": topic_path,
            "ack_deadline_seconds": self.ack_deadline_s,
            "enable_exactly_once_delivery": self.exactly_once,
            "enable_message_ordering": self.message_ordering,
            "expiration_policy": {},
            "labels": {**self.labels, "topic": _label(topic)},
            "dead_letter_policy": {
                "dead_letter_topic": dead_topic,
                "max_delivery_attempts": self.max_delivery_attempts,
            },
        }
        if self.retry_backoff_s is not None:
            low, high = self.retry_backoff_s
            request["retry_policy"] = {
                "minimum_backoff": _duration(low),
                "maximum_backoff": _duration(high),
            }
        self._create_subscription(request)
        return path

    def _create_subscription(self, request: dict[str, Any]) -> None:
        path = str(request["name"])
        try:
            self._subscriber.get_subscription(request={"subscription": path}, retry=self._retry)
        except gexc.PermissionDenied:
            _managed_elsewhere(path)
        except gexc.NotFound:
            try:
                self._subscriber.create_subscription(request=request, retry=self._retry)
                logger.info("created Pub/Sub subscription %s", path)
            except gexc.AlreadyExists:
                pass
        with self._lock:
            self._ready.add(path)

    # -- deliveries ------------------------------------------------------------------------------

    def _pull(
        self, path: str, topic: str, key: str, max_events: int, *, dead_letters: bool = False
    ) -> list[Event]:
        try:
            response = self._subscriber.pull(
                request={"subscription": path, "max_messages": max_events},
                retry=self._pull_retry,
                timeout=self.pull_wait_s,
            )
        except gexc.DeadlineExceeded:  # nothing arrived while waiting
            return []
        received = sorted(response.received_messages, key=lambda r: r.message.publish_time)
        events: dict[str, Event] = {}
        deliveries: dict[str, list[str]] = {}
        poison: list[str] = []
        for item in received:
            message = item.message
            event_id = str(message.attributes.get(EVENT_ID) or message.message_id)
            if event_id not in events:
                payload = _payload(message.data)
                if payload is None and dead_letters:  # shown as it came, for inspection
                    payload = {"raw": bytes(message.data).decode("utf-8", errors="replace")}
                if payload is None:
                    logger.warning(
                        "%s: message %s (event %s) is not a JSON object: given back, it goes "
                        "to the dead-letter topic after its delivery attempts",
                        path,
                        message.message_id,
                        event_id,
                    )
                    poison.append(item.ack_id)
                    continue
                published = message.attributes.get(PUBLISHED_AT) or _iso(message.publish_time)
                events[event_id] = Event(event_id, topic, str(published), payload)
            deliveries.setdefault(event_id, []).append(item.ack_id)
        if poison:
            self._modify_deadline(path, poison, 0)
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            pending = self._pending.setdefault(key, {})
            for event_id, ack_ids in deliveries.items():
                pending.setdefault(event_id, []).append(_Delivery(path, ack_ids, now))
        return list(events.values())

    def _prune(self, now: float) -> None:
        """Forget deliveries whose lease ran out long ago (their ack ids are useless)."""
        horizon = now - 2 * self.ack_deadline_s
        for key in list(self._pending):
            pending = self._pending[key]
            for event_id in list(pending):
                kept = [d for d in pending[event_id] if d.pulled_at >= horizon]
                if kept:
                    pending[event_id] = kept
                else:
                    del pending[event_id]
            if not pending:
                del self._pending[key]

    def _take(self, key: str, event_ids: Sequence[str]) -> dict[str, list[str]]:
        """Remove and return the ack ids of ``event_ids`` pulled under ``key``, by path."""
        by_path: dict[str, list[str]] = {}
        with self._lock:
            pending = self._pending.get(key, {})
            for event_id in event_ids:
                for delivery in pending.pop(event_id, []):
                    by_path.setdefault(delivery.subscription_path, []).extend(delivery.ack_ids)
        return by_path

    def _acknowledge(self, path: str, ack_ids: list[str]) -> None:
        def call(batch: list[str]) -> None:
            self._subscriber.acknowledge(
                request={"subscription": path, "ack_ids": batch},
                retry=self._retry,
                timeout=self.timeout_s,
            )

        self._with_ack_ids(path, ack_ids, call, "acknowledge")

    def _modify_deadline(self, path: str, ack_ids: list[str], seconds: int) -> None:
        def call(batch: list[str]) -> None:
            self._subscriber.modify_ack_deadline(
                request={"subscription": path, "ack_ids": batch, "ack_deadline_seconds": seconds},
                retry=self._retry,
                timeout=self.timeout_s,
            )

        self._with_ack_ids(path, ack_ids, call, "modify the ack deadline of")

    def _with_ack_ids(
        self, path: str, ack_ids: list[str], call: Callable[[list[str]], None], what: str
    ) -> None:
        """``call`` on batches of ``ack_ids``; on an exactly-once subscription the ids Pub/Sub
        refuses for a transient reason are tried again, those refused for good (an expired
        lease) are logged: their events come back and are deduplicated downstream."""
        for batch in _batches(ack_ids, _ACK_BATCH):
            remaining = batch
            for attempt in range(_ACK_ATTEMPTS):
                try:
                    call(remaining)
                    break
                except (gexc.InvalidArgument, gexc.FailedPrecondition) as exc:
                    failures = _ack_failures(exc)
                    if failures is None:
                        raise
                    transient = [
                        a for a in remaining if failures.get(a, "").startswith("TRANSIENT")
                    ]
                    refused = sum(1 for a in remaining if a in failures) - len(transient)
                    if refused:
                        logger.warning(
                            "%s: Pub/Sub refused to %s %d deliveries (expired leases); they "
                            "are delivered again",
                            path,
                            what,
                            refused,
                        )
                    if not transient:
                        break
                    remaining = transient
                    time.sleep(0.1 * 2**attempt)
            else:
                logger.warning(
                    "%s: could not %s %d deliveries; they are delivered again",
                    path,
                    what,
                    len(remaining),
                )


def _managed_elsewhere(path: str) -> None:
    """A resource this bus may not even look at (a publisher or subscriber role only, as
    Terraform grants): used as it is, an error on use if it is missing."""
    logger.debug("%s: no permission to inspect it; using it as it is", path)


def _default_publisher() -> Any:
    """A publisher that sends each message at once (publish waits for it anyway) and accepts
    ordering keys."""
    return pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=1),
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
    )


def _payload(data: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _duration(seconds: float) -> dict[str, int]:
    whole = int(seconds)
    return {"seconds": whole, "nanos": round((seconds - whole) * 1e9)}


def _label(value: str) -> str:
    """``value`` as a label value (lowercase letters, digits, ``-`` and ``_``, 63 at most)."""
    return re.sub(r"[^a-z0-9_-]", "_", value.lower())[:63]


def _dead_letter_key(topic: str) -> str:
    return f"{DEAD_LETTER_SUFFIX}:{topic}"


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ack_failures(exc: gexc.GoogleAPICallError) -> dict[str, str] | None:
    """Per ack id failure reasons of an exactly-once acknowledgement error, else None."""
    if exc.reason != _EXACTLY_ONCE_FAILURE:
        return None
    return {str(k): str(v) for k, v in (exc.metadata or {}).items()}
