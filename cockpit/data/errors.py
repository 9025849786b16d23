"""The one exception the dataset layer raises for unusable data."""

from __future__ import annotations


class DatasetError(Exception):
    """A dataset cannot be opened or does not match the config.

    The message is meant for the user as is (it names the path, the config key or the
    class names at fault); the CLI prints it without a traceback.
    """
