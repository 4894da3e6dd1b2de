"""Subcommands of ``ner`` beyond predict/tag/eval, one module per task or tool.

Each module has ``register(subparsers)``, which adds its parsers and sets ``run=function`` on
them; ``ner.cli.COMMAND_MODULES`` lists the modules. Command functions take the parsed namespace,
return an exit status, and raise ``ner.cli.CliError`` (or ``BundleError``) for user errors.
"""
