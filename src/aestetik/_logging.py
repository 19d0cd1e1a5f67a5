"""Messages through scanpy's logging, so that ``sc.settings.verbosity`` decides what is shown.

``logger.info("added %r", key)`` as with the standard library; scanpy prints warnings by
default and the info messages ("added obsm[...]", the stages and their times) from
``sc.settings.verbosity = "info"`` on, as it does for its own functions.
"""

from __future__ import annotations


def _text(msg: str, args: tuple) -> str:
    return msg % args if args else msg


def info(msg: str, *args: object) -> None:
    """An info message (shown from ``sc.settings.verbosity = "info"``)."""
    from scanpy import logging as logg

    logg.info(_text(msg, args))


def warning(msg: str, *args: object) -> None:
    """A warning (shown at scanpy's default verbosity)."""
    from scanpy import logging as logg

    logg.warning(_text(msg, args))


def debug(msg: str, *args: object) -> None:
    """A debug message (shown from ``sc.settings.verbosity = "debug"``)."""
    from scanpy import logging as logg

    logg.debug(_text(msg, args))
