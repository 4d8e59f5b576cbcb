"""The Pub/Sub events adapter on gcloud's Pub/Sub emulator (started once per session).

Each test uses its own name prefix, so topics and subscriptions never meet across tests.

Emulator limits met here (gcloud 528, cloud-pubsub-emulator 0.8.20):

- dead-lettering works on subscriptions *without* message ordering; on an ordered subscription
  the emulator throws a NullPointerException when a message passes ``max_delivery_attempts``
  and every later pull of that subscription fails. So the poison-message test runs on an
  unordered subscription (the default, as in Terraform), and for an ordered one the test only
  reads the dead-letter policy back with ``get_subscription``: the dead-lettering itself of
  ordered subscriptions is not exercised here;
- the subscription's retry policy (redelivery backoff) is stored but not applied: a nacked
  message comes back at once. The tests create subscriptions without one, so they do not
  depend on that.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.api_core.exceptions import InvalidArgument, PermissionDenied, ServiceUnavailable
from google.cloud import pubsub_v1
from google.pubsub_v1.types import PubsubMessage, PullResponse, ReceivedMessage
from google.rpc.error_details_pb2 import ErrorInfo

from fmnist.analytics.tables import ensure_tables, run_query
from fmnist.config import Settings
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import PredictionLog, open_prediction_log
from fmnist.platform.analytics import DuckDbAnalytics
from fmnist.platform.events import Event
from fmnist.platform.pubsub_events import PubSubEventBus
from fmnist.streaming.consumer import SUBSCRIPTION, consume_once
from fmnist.streaming.relay import relay_once
from prediction_records import record

pytestmark = pytest.mark.gcp

PROJECT = "fmnist-test"
NOW = datetime.now(UTC).replace(microsecond=0)

BusFactory = Callable[..., PubSubEventBus]


@pytest.fixture
def make_bus(pubsub_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[BusFactory]:
    """Buses on the emulator with this test's own prefix (closed afterwards). Subscriptions
    are created without a redelivery backoff (the emulator ignores it anyway) and an empty
    pull waits 0.5 s."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    prefix = f"t{uuid.uuid4().hex[:12]}"
    buses: list[PubSubEventBus] = []

    def make(**options: Any) -> PubSubEventBus:
        options = {"retry_backoff_s": None, "pull_wait_s": 0.5, **options}
        bus = PubSubEventBus(PROJECT, prefix, **options)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


def drain(bus: PubSubEventBus, topic: str, subscription: str, batch: int = 100) -> list[Event]:
    """Pull and acknowledge until a pull comes back empty; what was pulled, in order."""
    events: list[Event] = []
    while pulled := bus.pull(topic, subscription, batch):
        events.extend(pulled)
        bus.ack(subscription, [e.event_id for e in pulled])
    return events


def test_publish_pull_ack_round_trip(make_bus: BusFactory) -> None:
    bus = make_bus(subscriptions=["analytics"])  # created with the topic, before publishing
    sent = [{"n": i, "text": f"event {i}", "nested": {"ok": True}} for i in range(5)]
    ids = [bus.publish("predictions", payload) for payload in sent[:4]]
    ids.append(bus.publish("predictions", sent[4], event_id="prediction:req-4"))
    assert ids[-1] == "prediction:req-4" and len(set(ids)) == 5

    events = bus.pull("predictions", "analytics", 100)
    assert [e.event_id for e in events] == ids  # oldest first
    assert [dict(e.payload) for e in events] == sent
    assert {e.topic for e in events} == {"predictions"}
    assert all(datetime.fromisoformat(e.published_at) <= datetime.now(UTC) for e in events)
    bus.ack("analytics", [e.event_id for e in events])
    assert bus.pull("predictions", "analytics", 100) == []
    bus.ack("analytics", ids)  # acknowledging again (or unknown ids) changes nothing

    # A subscription created later gets what is published after it (as on Pub/Sub), on its
    # own; another topic gets nothing.
    assert bus.pull("predictions", "audit", 100) == []
    later = bus.publish("predictions", {"n": 5})
    assert [e.event_id for e in drain(bus, "predictions", "audit")] == [later]
    assert [e.event_id for e in drain(bus, "predictions", "analytics")] == [later]
    assert bus.pull("feedback", "analytics", 100) == []


def test_subscriptions_are_created_as_terraform_declares_them(
    make_bus: BusFactory, pubsub_emulator: str
) -> None:
    bus = make_bus(
        max_delivery_attempts=7,
        ack_deadline_s=30,
        retry_backoff_s=(10.0, 600.0),
        labels={"app": "fmnist"},
    )
    assert bus.pull("predictions", "analytics") == []
    admin = pubsub_v1.SubscriberClient()
    try:
        subscription = admin.get_subscription(
            subscription=bus.subscription_path("predictions", "analytics")
        )
        dead = admin.get_subscription(subscription=bus.dead_letter_subscription_path("predictions"))
    finally:
        admin.close()
    prefix = bus.prefix
    assert subscription.name.endswith(f"/subscriptions/{prefix}-predictions-analytics")
    assert subscription.topic == f"projects/{PROJECT}/topics/{prefix}-predictions"
    policy = subscription.dead_letter_policy
    assert policy.dead_letter_topic == f"projects/{PROJECT}/topics/{prefix}-predictions-dead-letter"
    assert policy.max_delivery_attempts == 7
    assert subscription.ack_deadline_seconds == 30
    assert subscription.enable_exactly_once_delivery
    assert not subscription.enable_message_ordering
    assert "expiration_policy" in subscription and not subscription.expiration_policy.ttl
    assert subscription.retry_policy.minimum_backoff.total_seconds() == 10
    assert subscription.retry_policy.maximum_backoff.total_seconds() == 600
    assert dict(subscription.labels) == {"app": "fmnist", "topic": "predictions"}
    # The dead letters are kept by a subscription of their own (a topic without one drops
    # what is published to it).
    assert dead.topic == policy.dead_letter_topic and dead.retain_acked_messages
    assert dead.name.endswith(f"/subscriptions/{prefix}-predictions-dead-letter")


def test_an_ordered_subscription_has_the_dead_letter_policy_too(make_bus: BusFactory) -> None:
    """Read back only: the emulator cannot dead-letter on ordered subscriptions (see the
    module docstring), so the forwarding itself is not tested for them."""
    bus = make_bus(message_ordering=True, max_delivery_attempts=5)
    assert bus.pull("feedback", "analytics") == []
    admin = pubsub_v1.SubscriberClient()
    try:
        subscription = admin.get_subscription(
            subscription=bus.subscription_path("feedback", "analytics")
        )
    finally:
        admin.close()
    assert subscription.enable_message_ordering
    assert subscription.dead_letter_policy.dead_letter_topic == bus.dead_letter_topic_path(
        "feedback"
    )
    assert subscription.dead_letter_policy.max_delivery_attempts == 5


def test_unacknowledged_events_are_delivered_again_and_duplicates_once_per_pull(
    make_bus: BusFactory,
) -> None:
    bus = make_bus(subscriptions=["analytics"])
    first = bus.publish("predictions", {"n": 1}, event_id="e-1")
    bus.publish("predictions", {"n": 1}, event_id="e-1")  # published twice (a relay restart)
    bus.publish("predictions", {"n": 2}, event_id="e-2")

    pulled = bus.pull("predictions", "analytics", 100)
    assert [e.event_id for e in pulled] == [first, "e-2"]  # one copy per pull
    assert bus.pull("predictions", "analytics", 100) == []  # leased meanwhile
    bus.nack("analytics", ["e-2"])  # processing failed: give it back
    again = bus.pull("predictions", "analytics", 100)
    assert [(e.event_id, e.payload) for e in again] == [("e-2", {"n": 2})]
    bus.ack("analytics", ["e-1", "e-2"])  # every copy of e-1 with it
    assert bus.pull("predictions", "analytics", 100) == []


def test_ordering_keys_keep_each_keys_order(make_bus: BusFactory) -> None:
    bus = make_bus(
        subscriptions=["analytics"],
        message_ordering=True,
        ordering_key=lambda topic, payload: str(payload.get("key") or ""),
    )
    expected: dict[str, list[int]] = {"a": [], "b": []}
    for i in range(40):
        key = "a" if i % 3 else "b"
        if i % 2:
            bus.publish("drift", {"key": key, "i": i})  # the key from ordering_key(...)
        else:
            bus.publish("drift", {"i": i}, ordering_key=key)  # an explicit key
        expected[key].append(i)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for event in drain(bus, "drift", "analytics", batch=7):
        key = event.payload.get("key") or ("a" if event.payload["i"] % 3 else "b")
        seen[key].append(event.payload["i"])
    assert seen == expected


def test_a_poison_message_lands_in_the_dead_letter_topic(
    make_bus: BusFactory, pubsub_emulator: str
) -> None:
    bus = make_bus(subscriptions=["analytics"], max_delivery_attempts=5)
    bus.publish("predictions", {"poison": True}, event_id="poison-1")
    bus.publish("predictions", {"fine": True}, event_id="fine-1")
    # A message that is not JSON (published by something else): never handed to a consumer.
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(
        bus.topic_path("predictions"), b"\xff not json", event_id="garbage-1"
    ).result()

    handled: list[str] = []
    for _ in range(8):  # the consumer fails on the poison message every time
        events = bus.pull("predictions", "analytics", 10)
        good = [e.event_id for e in events if "poison" not in e.payload]
        handled += good
        bus.ack("analytics", good)
        bus.nack("analytics", [e.event_id for e in events if "poison" in e.payload])
    assert handled == ["fine-1"]
    assert bus.pull("predictions", "analytics", 10) == []  # nothing left, nothing stuck

    dead = bus.pull_dead_letters("predictions")
    assert sorted(e.event_id for e in dead) == ["garbage-1", "poison-1"]
    by_id = {e.event_id: e for e in dead}
    assert by_id["poison-1"].payload == {"poison": True}
    assert by_id["garbage-1"].payload == {"raw": "\ufffd not json"}
    bus.ack_dead_letters("predictions", list(by_id))
    assert bus.pull_dead_letters("predictions") == []


def fill(log: PredictionLog, n: int, labelled: int) -> None:
    log.append([record(i, NOW + timedelta(seconds=i)) for i in range(n)])
    store = FeedbackStore(log)
    for i in range(labelled):
        store.record(f"req-{i:05d}", i % 10 if i % 4 else (i + 1) % 10)  # 3 in 4 right


def test_relay_to_consumer_over_pubsub_counts_each_record_once(
    make_bus: BusFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The outbox relay publishes the prediction log; the analytics consumer folds it into
    DuckDB. The relay publishes everything twice (killed before its cursor moved), and one
    consumer dies after writing a batch without acknowledging it: the batch comes back when
    its lease expires (10 s), and no record is counted twice."""
    log = open_prediction_log(Settings(home=tmp_path / "home"))
    fill(log, 300, 80)
    # As the composition builds it; the subscription's lease (ack deadline) is 10 s.
    producer = make_bus(subscriptions=[SUBSCRIPTION], ack_deadline_s=10)
    assert relay_once(log, producer, batch=100).predictions == 300
    log.db.write("UPDATE outbox SET seq = 0, feedback_rowid = 0")  # as if the cursor never moved
    again = relay_once(log, producer, batch=100)
    assert (again.predictions, again.feedback) == (300, 80)

    analytics = DuckDbAnalytics(tmp_path / "analytics.duckdb")
    ensure_tables(analytics)
    dying = make_bus()
    lost = dying.pull("predictions", SUBSCRIPTION, 50)
    leased_at = time.monotonic()
    rows = [
        {"event_id": e.payload["id"], "time": e.payload["time"], **e.payload["data"]} for e in lost
    ]
    assert analytics.insert_rows("prediction_events", rows) == len(lost) > 0  # never acknowledged

    consumer = make_bus()
    first = consume_once(consumer, analytics, batch=100)
    assert first.written == {"prediction_events": 300 - len(lost), "feedback_events": 80}
    counts = analytics.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT request_id) AS d FROM prediction_events"
    )
    assert counts == [{"n": 300, "d": 300}]

    time.sleep(max(0.0, leased_at + 11 - time.monotonic()))  # the dead consumer's lease ends
    redelivered = consume_once(consumer, analytics, batch=100)
    assert redelivered.received["prediction_events"] >= len(lost)
    assert redelivered.written == {"prediction_events": 0, "feedback_events": 0}
    assert consume_once(consumer, analytics).received == {
        "prediction_events": 0,
        "feedback_events": 0,
    }
    # The dead consumer comes back and acknowledges its expired leases: on an exactly-once
    # subscription Pub/Sub refuses that (logged, not raised; the events were redelivered).
    with caplog.at_level(logging.WARNING, logger="fmnist.platform.pubsub_events"):
        dying.ack(SUBSCRIPTION, [e.event_id for e in lost])
    assert "refused to acknowledge" in caplog.text and "expired leases" in caplog.text
    counts = analytics.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT request_id) AS d FROM prediction_events"
    )
    assert counts == [{"n": 300, "d": 300}]
    assert run_query(analytics, "live_accuracy") == [
        {"model_version": 1, "labelled": 80, "accuracy": 0.75}
    ]
    log.close()


# -- failures the emulator cannot produce, on stand-in clients ---------------------------------


class FailingFuture:
    def result(self, timeout: float | None = None) -> str:
        raise ServiceUnavailable("publish failed after the client's retries")


class FlakyPublisher:
    """Fails the first publish, as a publisher whose retries ran out does."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, str, dict[str, str]]] = []
        self.resumed: list[tuple[str, str]] = []

    def publish(
        self, topic: str, data: bytes, *, ordering_key: str, retry: Any, **attributes: str
    ) -> Any:
        self.published.append((topic, data, ordering_key, attributes))
        if len(self.published) == 1:
            return FailingFuture()
        future: Future[str] = Future()
        future.set_result("message-id")
        return future

    def resume_publish(self, topic: str, ordering_key: str) -> None:
        self.resumed.append((topic, ordering_key))


def test_a_failed_ordered_publish_raises_and_resumes_its_key() -> None:
    publisher = FlakyPublisher()
    bus = PubSubEventBus(
        PROJECT, "fmnist", publisher=publisher, subscriber=object(), create_missing=False
    )
    with pytest.raises(ServiceUnavailable):
        bus.publish("predictions", {"n": 1}, event_id="e-1", ordering_key="k")
    topic = f"projects/{PROJECT}/topics/fmnist-predictions"
    assert publisher.resumed == [(topic, "k")]  # else every later publish of "k" fails
    assert bus.publish("predictions", {"n": 1}, event_id="e-1", ordering_key="k") == "e-1"
    _, data, key, attributes = publisher.published[-1]
    assert (json.loads(data), key, attributes["event_id"]) == ({"n": 1}, "k", "e-1")


class RefusingSubscriber:
    """Returns three messages; refuses the first acknowledgement as an exactly-once
    subscription does (one id for a transient reason, one for good)."""

    def __init__(self) -> None:
        self.acknowledged: list[list[str]] = []

    def pull(self, request: dict[str, Any], retry: Any, timeout: float) -> PullResponse:
        when = datetime(2024, 5, 1, tzinfo=UTC)
        return PullResponse(
            received_messages=[
                ReceivedMessage(
                    ack_id=f"ack-{i}",
                    message=PubsubMessage(
                        data=json.dumps({"n": i}).encode(),
                        attributes={"event_id": f"e-{i}"},
                        message_id=str(i),
                        publish_time=when + timedelta(seconds=i),
                    ),
                )
                for i in (2, 0, 1)
            ]
        )

    def acknowledge(self, request: dict[str, Any], retry: Any, timeout: float) -> None:
        self.acknowledged.append(list(request["ack_ids"]))
        if len(self.acknowledged) == 1:
            raise InvalidArgument(
                "some acknowledgements failed",
                error_info=ErrorInfo(
                    reason="EXACTLY_ONCE_ACKID_FAILURE",
                    domain="pubsub.googleapis.com",
                    metadata={
                        "ack-0": "TRANSIENT_FAILURE_UNORDERED_ACK_ID",
                        "ack-1": "PERMANENT_FAILURE_INVALID_ACK_ID",
                    },
                ),
            )


def test_acknowledgements_refused_for_a_transient_reason_are_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    subscriber = RefusingSubscriber()
    bus = PubSubEventBus(
        PROJECT, "fmnist", publisher=object(), subscriber=subscriber, create_missing=False
    )
    events = bus.pull("predictions", "analytics", 10)
    assert [e.event_id for e in events] == ["e-0", "e-1", "e-2"]  # by publish time
    with caplog.at_level(logging.WARNING, logger="fmnist.platform.pubsub_events"):
        bus.ack("analytics", [e.event_id for e in events])
    assert subscriber.acknowledged == [["ack-0", "ack-1", "ack-2"], ["ack-0"]]
    assert "refused to acknowledge 1 deliveries" in caplog.text


class PublishOnlyPublisher(FlakyPublisher):
    """A publisher role's view (what Terraform grants): it may publish, not read topics."""

    def get_topic(self, request: dict[str, Any], retry: Any) -> None:
        raise PermissionDenied("pubsub.topics.get denied")

    def create_topic(self, request: dict[str, Any], retry: Any) -> None:
        raise AssertionError("must not try to create what it may not even read")


class ConsumeOnlySubscriber(RefusingSubscriber):
    """A subscriber role's view: it may pull and acknowledge, not read subscriptions."""

    def get_subscription(self, request: dict[str, Any], retry: Any) -> None:
        raise PermissionDenied("pubsub.subscriptions.get denied")

    def create_subscription(self, request: dict[str, Any], retry: Any) -> None:
        raise AssertionError("must not try to create what it may not even read")


def test_resources_it_may_not_inspect_are_used_as_they_are() -> None:
    publisher, subscriber = PublishOnlyPublisher(), ConsumeOnlySubscriber()
    bus = PubSubEventBus(
        PROJECT, "fmnist", publisher=publisher, subscriber=subscriber, subscriptions=["analytics"]
    )
    with pytest.raises(ServiceUnavailable):  # the stand-in's first publish fails
        bus.publish("predictions", {"n": 1})
    assert bus.publish("predictions", {"n": 1}, event_id="e-9") == "e-9"
    assert len(bus.pull("predictions", "analytics", 10)) == 3
