"""``fmnist keys``: API keys with scopes (stored hashed; a new key is printed once).

Commands import their modules when they run, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fmnist.cli_support import AppContext, console, err_console

if TYPE_CHECKING:
    from fmnist.security.keys import KeyStore

keys_app = typer.Typer(help="API keys with scopes for the HTTP API.", no_args_is_help=True)


def _store(ctx: typer.Context) -> KeyStore:
    from fmnist.security.keys import KeyStore, key_store_path

    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    return KeyStore(key_store_path(settings.home, settings.security.keys_path))


@keys_app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
    scope: Annotated[
        list[str], typer.Option("--scope", help="predict, explain, feedback or admin (repeat).")
    ],
) -> None:
    """Create a key; it is printed once (stdout), only its SHA-256 is stored."""
    key, record = _store(ctx).create(name, scope)
    err_console.print(
        f"key {record.key_id} ({record.name}; {', '.join(record.scopes)}): store it now, it is "
        "not shown again",
        markup=False,
        highlight=False,
    )
    typer.echo(key)


@keys_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The keys (ids, names, scopes, times; never the keys)."""
    keys = [k.public() for k in _store(ctx).records()]
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    table = Table(title=f"API keys ({len(keys)})")
    for column in ("key_id", "name", "scopes", "created_at", "revoked_at"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key["key_id"],
            key["name"],
            ", ".join(key["scopes"]),
            key["created_at"],
            key["revoked_at"] or "",
        )
    console.print(table)


@keys_app.command("revoke")
def revoke_command(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]
) -> None:
    """Revoke a key (servers stop accepting it on their next request)."""
    record = _store(ctx).revoke(key_id)
    console.print(f"revoked {record.key_id} ({record.name})", highlight=False)
