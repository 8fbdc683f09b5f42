"""The ``ecgedge`` command group; each submodule adds the commands of one area."""

from __future__ import annotations

import click

from ecgedge import __version__
from ecgedge.cli.options import EXIT_CODES_HELP, EXTRAS_HELP, MissingExtra, extra_of


class _Commands(click.Group):
    """The group; a command that imports a module of a missing extra exits in one line naming it."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as err:
            extra = extra_of(err.name)
            if extra is None or err.name is None:
                raise
            raise MissingExtra(f"ecgedge {ctx.invoked_subcommand}", extra, err.name) from None


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=f"{EXTRAS_HELP}\n\n{EXIT_CODES_HELP}",
)
@click.version_option(__version__, prog_name="ecgedge")
def main() -> None:
    """ECG heartbeat anomaly detection, from workstation GPU to bedside device."""


def _register() -> None:
    from ecgedge.cli import bridge, deploy, modelling, review, scan

    for module in (modelling, deploy, bridge, scan, review):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
