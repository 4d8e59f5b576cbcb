"""Event-driven processing: the prediction log's outbox relay and the analytics consumer.

The prediction log is the durable local queue (a transactional outbox): serving never waits on
the event sink. :mod:`~fmnist.streaming.relay` publishes every logged prediction and feedback
through the ``events`` port as a CloudEvents envelope (at least once); the consumer
(:mod:`~fmnist.streaming.consumer`) folds them, idempotently, into the analytics tables.
"""
