"""Valence and arousal where a music collection lives: in the files' tags
(:mod:`.tags`, needs the ``tags`` extra for mutagen), in playlists (:mod:`.playlist`), with
the mood words both use (:mod:`.moods`). The command-line side is :mod:`music2emotion.cli.collection`;
the beets plugin is ``beetsplug.music2emotion``. Built on the public inference API only.
"""
