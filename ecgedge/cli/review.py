"""``ecgedge review``: a bridge session's alarms and strips, from its SQLite database."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from ecgedge.cli.options import http_address, serve_page


@click.command()
@click.option(
    "--db",
    "db",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The bridge's SQLite database (ecgedge bridge --db), finished or still being written.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the alarm list and every kept strip as DIR/index.html (self-contained: no script, no other file).",
)
@click.option(
    "--http",
    "http",
    default=None,
    metavar="HOST:PORT",
    help="Serve the bedside page over the database (the [view] extra).",
)
@click.option(
    "--http-token",
    envvar="ECGEDGE_HTTP_TOKEN",
    default=None,
    help="The page's access token (env ECGEDGE_HTTP_TOKEN; default: a new random one, printed on stderr).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --http: stop after S seconds (default: until interrupted).",
)
def review(db: Path, report_dir: Path | None, http: str | None, http_token: str | None, duration: float | None) -> None:
    """Review a bridge session: its alarm list and each alarm's strip, as a static report or the bedside page."""
    from ecgedge.view.review import ReviewFeed, write_report

    if report_dir is None and http is None:
        raise click.UsageError("give --report DIR, --http HOST:PORT or both")
    address = http_address(http, http_token) if http else None
    try:
        feed = ReviewFeed(db)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if report_dir is not None:
        click.echo(f"review: wrote {write_report(feed, report_dir)}")
    if address is None:
        return
    server = serve_page(feed, address, http_token, "review")
    stop = threading.Event()
    try:
        stop.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


COMMANDS = (review,)
