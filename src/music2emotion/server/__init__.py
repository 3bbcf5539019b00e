"""``music2emotion serve``: a web page and a JSON API over one loaded model (the ``serve``
extra). :mod:`.app` holds the routes and the page, :mod:`.uploads` the streaming reception
of uploaded files; both predict through :class:`music2emotion.EmotionModel`."""

from .app import create_app, default_concurrency, load_model, run, running, web_dir
from .uploads import MAX_FILES, TEMP_PREFIX, audio_suffix, display_name

__all__ = ["MAX_FILES", "TEMP_PREFIX", "audio_suffix", "create_app", "default_concurrency",
           "display_name", "load_model", "run", "running", "web_dir"]
