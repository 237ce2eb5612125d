"""The one error the authoring pipeline raises."""

from __future__ import annotations

from autograder.config import ConfigError


class AuthoringError(ConfigError):
    """A mistake in an assignment's sources (markers, notebook, files), with the fix in the message.

    It subclasses :class:`~autograder.config.ConfigError` so that every command that already
    reports config mistakes without a traceback (``autograder release``) reports these too.
    """
