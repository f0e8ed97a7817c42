"""`tune` subcommands: a name -> (module, summary) table, imported lazily for a fast --help."""

COMMANDS: dict[str, tuple[str, str]] = {
    "explore": ("tuner.cli.explore", "run (or resume) a study's campaign and print its Pareto front"),
    "measure": ("tuner.cli.measure", "build and measure one configuration of a study"),
    "status": ("tuner.cli.status", "count a study's trials by state and failures by reason"),
    "pareto": ("tuner.cli.pareto", "print a study's Pareto front (table, csv, json, latex)"),
    "confirm": ("tuner.cli.confirm", "re-measure the front and the baseline to check they survive noise"),
    "export": ("tuner.cli.export", "write the Pareto set, all trials, a LaTeX table and plots"),
    "reproduce": ("tuner.cli.reproduce", "rebuild and re-measure recorded points against the baseline; did they reproduce?"),
    "reduce": ("tuner.cli.reduce", "shrink a configuration to the knobs that matter (delta debugging, measured)"),
    "pack": ("tuner.cli.pack", "write a study, its sources, target and journal as one archive"),
    "unpack": ("tuner.cli.unpack", "extract a `tune pack` archive and check its files"),
    "dashboard": ("tuner.cli.dashboard", "serve optuna-dashboard on a study, on loopback, knobs as their values"),
    "spaces": ("tuner.cli.spaces", "list the built-in studies, or one study's knobs"),
    "targets": ("tuner.cli.targets", "list the targets and whether each is usable here now"),
    "repair": ("tuner.cli.repair", "keep a damaged journal's valid records and move its bad lines aside"),
    "flags": ("tuner.flagspace", "generate a compiler flag space from the installed compiler"),
    "vta": ("tuner.vta.cli", "evaluate layers or ResNet-18 on the VTA simulator"),
}
# These parse their own options (and --help): `tune NAME ARGS` calls the module's main(ARGS).
PASSTHROUGH = ("flags", "vta")
