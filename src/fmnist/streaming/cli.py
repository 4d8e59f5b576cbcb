"""``fmnist events``: the outbox relay and the analytics consumer.

Commands import their modules when they run, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from fmnist.cli_support import AppContext, err_console

events_app = typer.Typer(
    help="Event streams: publish the prediction log, consume into analytics.",
    no_args_is_help=True,
)

OnceOption = Annotated[bool, typer.Option("--once", help="One pass, then exit.")]
IntervalOption = Annotated[
    float, typer.Option("--interval", min=0.05, help="Seconds between passes.")
]


@events_app.command("relay")
def relay_command(
    ctx: typer.Context, once: OnceOption = False, interval: IntervalOption = 1.0
) -> None:
    """Publish every logged prediction and feedback through the events port (at least once,
    in order, from the relay's cursor in the log)."""
    from fmnist.monitoring.journal import replay_journals
    from fmnist.streaming.relay import relay_once

    services = ctx.obj.services
    while True:
        replay_journals(services.prediction_log)
        result = relay_once(services.prediction_log, services.events)
        if result.predictions or result.feedback or once:
            err_console.print(
                f"published {result.predictions} predictions and {result.feedback} feedback "
                f"(cursor seq {result.seq}, feedback {result.feedback_rowid})",
                markup=False,
                highlight=False,
            )
        if once:
            return
        time.sleep(interval)


@events_app.command("consume")
def consume_command(
    ctx: typer.Context,
    once: OnceOption = False,
    interval: IntervalOption = 1.0,
    relay: Annotated[
        bool, typer.Option("--relay/--no-relay", help="Also run the relay before each pass.")
    ] = True,
) -> None:
    """Fold prediction and feedback events into the analytics tables (idempotent; events are
    acknowledged only once written, so a stopped consumer loses nothing)."""
    from fmnist.monitoring.journal import replay_journals
    from fmnist.streaming.consumer import consume_once
    from fmnist.streaming.relay import relay_once

    app_ctx: AppContext = ctx.obj
    services = app_ctx.services
    while True:
        if relay:
            replay_journals(services.prediction_log)
            relay_once(services.prediction_log, services.events)
        result = consume_once(services.events, services.analytics)
        if any(result.received.values()) or once:
            err_console.print(
                f"received {result.received}, written {result.written}",
                markup=False,
                highlight=False,
            )
        if once:
            return
        time.sleep(interval)
