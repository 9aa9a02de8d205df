"""What the command groups share."""

from __future__ import annotations

from typing import Callable, NoReturn


def load_settings(fail: Callable[[str], NoReturn]):
    """The settings from the environment; an invalid one is reported through ``fail`` (which
    prints and exits), naming what is wrong."""
    from pydantic import ValidationError

    from tradewatch.tasks.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        fail("invalid configuration: " + "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()))
