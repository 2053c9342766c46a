"""``microville token``: API tokens (create, list, revoke; the file keeps hashes only)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import (
    ConfigOpt,
    WholeHelpGroup,
    console,
    load_sites,
    settings_from,
)
from microville.settings import Settings

if TYPE_CHECKING:
    from service.access.tokens import TokenStore

token_app = typer.Typer(
    cls=WholeHelpGroup,
    rich_markup_mode=None,
    help="API tokens: create, list, revoke (the file keeps hashes only).",
)

TokensOpt = Annotated[
    Path | None,
    typer.Option("--tokens", help="Token file (SQLite) [env MICROVILLE_API_TOKENS_PATH]"),
]


def _token_store(tokens: Path | None, settings: Settings) -> TokenStore:
    from service.access.tokens import TokenStore

    return TokenStore(tokens if tokens is not None else settings.api_tokens_path)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="read, write (manual entries) or admin")],
    name: Annotated[str, typer.Option(help="Who holds it, e.g. 'coop member A' or grafana")],
    site: Annotated[
        list[str] | None, typer.Option(help="A site it covers (repeat for several)")
    ] = None,
    all_sites: Annotated[bool, typer.Option("--all-sites", help="Cover every site")] = False,
    config: ConfigOpt = None,
    tokens: TokensOpt = None,
) -> None:
    """Create a token and print it, once: only its hash is kept."""
    from service.access.tokens import Role

    settings = settings_from(config)
    try:
        chosen = Role(role)
    except ValueError:
        console.print(f"[red]--role[/red] {role!r}: read, write or admin")
        raise typer.Exit(2) from None
    if chosen is not Role.ADMIN and not site and not all_sites:
        console.print(f"[red]a {chosen} token needs --site S (repeatable) or --all-sites[/red]")
        raise typer.Exit(2)
    if site and all_sites:
        console.print("[red]give --site or --all-sites, not both[/red]")
        raise typer.Exit(2)
    if site:
        known = {s.id for s in load_sites(settings).sites}
        if unknown := sorted(set(site) - known):
            console.print(
                f"[red]unknown site[/red] {', '.join(unknown)} in {settings.config}; "
                f"known: {', '.join(sorted(known))}",
                highlight=False,
            )
            raise typer.Exit(2)
    store = _token_store(tokens, settings)
    try:
        info, token = store.create(name, chosen, site or None)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        store.close()
    scope = "every site" if info.sites is None else ", ".join(sorted(info.sites))
    console.print(
        f"created token {info.id} ({info.role}, {scope}) for {info.name}", highlight=False
    )
    console.print("token (shown once, store it now):", highlight=False)
    # Plain print: the token alone on its line, for scripts (`… | tail -1`).
    print(token)


@token_app.command("list")
def token_list(config: ConfigOpt = None, tokens: TokensOpt = None) -> None:
    """List the tokens: id, role, sites, holder, created, revoked (never the token)."""
    store = _token_store(tokens, settings_from(config))
    try:
        infos = store.tokens()
    finally:
        store.close()
    for t in infos:
        scope = "*" if t.sites is None else ",".join(sorted(t.sites))
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}Z" if t.revoked_at else "active"
        console.print(
            f"{t.id}  {t.role:<5}  {scope:<24}  {t.created_at:%Y-%m-%d %H:%M}Z  {state:<24}  "
            f"{t.name}",
            markup=False,
            highlight=False,
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The id shown by `token list`")],
    config: ConfigOpt = None,
    tokens: TokensOpt = None,
) -> None:
    """Revoke a token at once (the running service checks the file on every request)."""
    store = _token_store(tokens, settings_from(config))
    try:
        revoked = store.revoke(token_id)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        store.close()
    if not revoked:
        console.print(f"[red]no active token {token_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {token_id}")
