"""``music2emotion serve``: a web page and a JSON API over one model (the ``serve`` extra).

:mod:`.app` holds the routes and the page, :mod:`.settings` every limit and timeout,
:mod:`.guard` who may call (Host, origin, token) and the JSON error shape, :mod:`.uploads`
the streaming reception of uploaded files, :mod:`.analysis` the probe and worker processes
that read and predict them (through :class:`music2emotion.EmotionModel`), and :mod:`.http`
the connection layer and serving.
"""

from .app import create_app, web_dir
from .http import DEFAULT_HOST, DEFAULT_PORT, running, serve
from .settings import LOOPBACK_NAMES, TOKEN_ENV, ServerSettings
from .uploads import MAX_FILES, TEMP_PREFIX, audio_suffix, display_name

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "LOOPBACK_NAMES", "MAX_FILES", "TEMP_PREFIX", "TOKEN_ENV",
           "ServerSettings", "audio_suffix", "create_app", "display_name", "running", "serve", "web_dir"]
