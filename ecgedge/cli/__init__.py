"""The ``ecgedge`` command group; each submodule adds the commands of one area."""

from __future__ import annotations

import click

from ecgedge import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecgedge")
def main() -> None:
    """ECG heartbeat anomaly detection, from workstation GPU to bedside device."""


def _register() -> None:
    from ecgedge.cli import bridge, deploy, modelling, scan

    for module in (modelling, deploy, bridge, scan):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
