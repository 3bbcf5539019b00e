"""The package version, defined once: ``pyproject.toml`` reads it, and so does every model
file's metadata (``music2emotion_version``)."""

__version__ = "0.5.0"
