"""Valence and arousal in a music file's own tags, written so that no music can be lost.

Fields (documented in docs/collection.md), one text value each:

==========================  =================================================
``MUSIC2EMOTION_VALENCE``   valence, 4 decimals (``0.6235``)
``MUSIC2EMOTION_AROUSAL``   arousal, 4 decimals
``MUSIC2EMOTION_SCALE``     ``0-1`` (the model's scale), ``1-9`` (DEAM's), or
                            ``1-9 DEAM`` (DEAM's convention, a model's output
                            of its own: not its one answer)
``MUSIC2EMOTION_MODEL``     the model that made them, e.g.
                            ``accurate (music2emotion 0.1.0, sha256 1a2b3c4d)``
``MUSIC2EMOTION_P_HAPPY``   the quadrant probabilities, 4 decimals, when the
``..._P_ANGRY``, ``_P_SAD``  model has a mood head
``MUSIC2EMOTION_P_TENDER``
``MUSIC2EMOTION_WARNING``   the prediction's warning, when it had one (``not
                            music: speech (...)``, ``damaged: ...``)
``MOOD``                    optional: happy, angry, sad or tender (``calm``, as
                            earlier versions wrote it, reads as ``tender``)
==========================  =================================================

stored the way each container keeps custom fields: ID3 ``TXXX`` frames with that
description (MP3, and the ID3 chunk of WAV and AIFF; ``MOOD`` is ID3v2.4's ``TMOO`` frame,
or ``TXXX:MOOD`` in ID3v2.3 tags, which have no ``TMOO``), Vorbis comments (FLAC, Ogg
Vorbis, Opus, Ogg FLAC, Speex) and iTunes-style freeform atoms
(``----:com.apple.iTunes:<FIELD>``, MP4/M4A).

Writing never touches the original file until a complete, checked copy exists: the file is
copied beside itself (``.NAME.m2e-PID.tmp``), mutagen tags the copy, the copy is read back,
flushed to disk and renamed over the original. A kill at any moment leaves either the old
file or the new one, never a half-written one; a temporary copy that a killed run left
behind is removed the next time its file is tagged.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.id3 import TMOO, TXXX
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from music2emotion import EmotionModel, __version__, to_unit
from music2emotion.config import MOOD_COLUMNS
from music2emotion.modelfile import model_name

from .moods import quadrant_word

FIELD_VALENCE = "MUSIC2EMOTION_VALENCE"
FIELD_AROUSAL = "MUSIC2EMOTION_AROUSAL"
FIELD_SCALE = "MUSIC2EMOTION_SCALE"
FIELD_MODEL = "MUSIC2EMOTION_MODEL"
FIELD_MOOD = "MOOD"
# the prediction's warning, so that readers of the tags (playlists, beets) can leave out
# files that are not music as readers of prediction rows do
FIELD_WARNING = "MUSIC2EMOTION_WARNING"
# the mood head's probabilities, in the order of MOOD_CLASSES
FIELDS_PROBABILITY = tuple(f"MUSIC2EMOTION_{c.upper()}" for c in MOOD_COLUMNS)
FIELDS = (FIELD_VALENCE, FIELD_AROUSAL, FIELD_SCALE, FIELD_MODEL)
# how the scale is written in the tag, by the name the library's ``scale`` options use
SCALE_TAGS = {"unit": "0-1", "deam": "1-9"}
# what DEAM's panel would rate, written by a model that has that convention as an output of
# its own: readers that place songs by the one answer (playlists, beets) cannot use it
DEAM_CONVENTION_TAG = "1-9 DEAM"
MP4_PREFIX = "----:com.apple.iTunes:"

# containers whose tags are written, by the kind of tag they hold
ID3_TYPES = (MP3, WAVE, AIFF)
VORBIS_TYPES = (FLAC, OggVorbis, OggOpus, OggFLAC, OggSpeex)
MP4_TYPES = (MP4,)
TAGGABLE = (*ID3_TYPES, *VORBIS_TYPES, *MP4_TYPES)
TAGGABLE_NAMES = "MP3, WAV, AIFF, FLAC, Ogg Vorbis, Opus, Ogg FLAC, Speex, MP4/M4A"

_TEMP = re.compile(r"\.m2e-(\d+)\.tmp$")


class TagError(Exception):
    """A file whose tags cannot be read or written; ``str(err)`` is a one-line reason."""


class BadTagValue(TagError):
    """Our fields are there but do not hold what we write (edited by hand, another tool)."""


@dataclass(frozen=True)
class EmotionTags:
    """What the fields hold: values on ``scale`` ("unit" for 0-1, "deam" for 1-9), the
    ``model`` that made them, when written the ``mood`` word, and the quadrant
    ``probabilities`` (in the order of ``MOOD_CLASSES``) of a model with a mood head;
    ``deam_convention``: the values are the model's DEAM convention (on 1-9), not its one
    answer; ``warning``: the prediction's warning (``""``: none)."""

    valence: float
    arousal: float
    model: str
    scale: str = "unit"
    mood: str | None = None
    probabilities: tuple[float, float, float, float] | None = None
    deam_convention: bool = False
    warning: str = ""

    def __post_init__(self) -> None:
        # a MOOD of an earlier version (calm) is stored and read as today's word (tender)
        if self.mood:
            object.__setattr__(self, "mood", quadrant_word(self.mood))

    def unit(self) -> tuple[float, float]:
        """(valence, arousal) on the 0-1 scale, whatever scale they are stored on."""
        if self.scale == "deam":
            return float(to_unit(self.valence)), float(to_unit(self.arousal))
        return self.valence, self.arousal

    @property
    def answer(self) -> tuple[float, float] | None:
        """The one answer, (valence, arousal) on the 0-1 scale; ``None`` when the fields hold
        DEAM's convention instead."""
        return None if self.deam_convention else self.unit()

    def fields(self) -> dict[str, str]:
        """The field values as written: 4 decimals, the scale and model, the mood and the
        warning if set."""
        out = {FIELD_VALENCE: f"{self.valence:.4f}", FIELD_AROUSAL: f"{self.arousal:.4f}",
               FIELD_SCALE: DEAM_CONVENTION_TAG if self.deam_convention else SCALE_TAGS[self.scale],
               FIELD_MODEL: self.model}
        if self.probabilities is not None:
            out.update({f: f"{p:.4f}" for f, p in zip(FIELDS_PROBABILITY, self.probabilities)})
        if self.mood:
            out[FIELD_MOOD] = self.mood
        if self.warning:
            out[FIELD_WARNING] = self.warning
        return out


def model_id(model: EmotionModel) -> str:
    """The text of ``MUSIC2EMOTION_MODEL`` for ``model``: its name (a bundled model's name,
    else the file's stem), the music2emotion version that made it and the start of the
    file's SHA-256, so that a retrained model of the same name and version is told apart
    (files tagged by it are not skipped as up to date)."""
    name = model_name(model.path)
    digest = hashlib.sha256()
    with open(model.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    version = model.info.get("music2emotion_version", __version__)
    return f"{name} (music2emotion {version}, sha256 {digest.hexdigest()[:8]})"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text


def open_tags(path: str | os.PathLike[str]) -> mutagen.FileType:
    """The file opened with mutagen, as one of the containers we tag, or ``TagError``."""
    p = Path(path)
    if not p.exists():
        raise TagError("file not found")
    if not p.is_file():
        raise TagError("not a regular file")
    try:
        f = mutagen.File(os.fsencode(p), options=list(TAGGABLE))
    except PermissionError as exc:
        raise TagError("permission denied") from exc
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as exc:
        raise TagError(f"unreadable tags or audio header ({_reason(exc)})") from exc
    if f is None:
        raise TagError(f"cannot store tags in this kind of file (supported: {TAGGABLE_NAMES})")
    return f


# --- reading and setting the fields, per kind of tag ----------------------------------------

def _get(f: mutagen.FileType, field: str) -> str | None:
    tags = f.tags
    if tags is None:
        return None
    if isinstance(f, ID3_TYPES):
        frames = tags.getall(f"TXXX:{field}")
        if field == FIELD_MOOD and not frames:
            frames = tags.getall("TMOO")
        return str(frames[0].text[0]) if frames and frames[0].text else None
    if isinstance(f, MP4_TYPES):
        values = tags.get(MP4_PREFIX + field)
        return bytes(values[0]).decode("utf-8", "replace") if values else None
    values = tags.get(field)
    return str(values[0]) if values else None


def _set(f: mutagen.FileType, values: dict[str, str], remove: tuple[str, ...] = ()) -> None:
    """Set ``values``, and drop the fields of ``remove`` that ``values`` does not set."""
    if f.tags is None:
        f.add_tags()
    tags = f.tags
    for field in remove:
        if field in values:
            continue
        if isinstance(f, ID3_TYPES):
            tags.delall(f"TXXX:{field}")
        else:
            key = MP4_PREFIX + field if isinstance(f, MP4_TYPES) else field
            if key in tags:
                del tags[key]
    if isinstance(f, ID3_TYPES):
        v23 = tags.version < (2, 4, 0)
        for field, text in values.items():
            if field == FIELD_MOOD and not v23:
                tags.delall(f"TXXX:{FIELD_MOOD}")
                tags.setall("TMOO", [TMOO(encoding=3, text=[text])])
            else:
                tags.delall(f"TXXX:{field}")
                # UTF-8 (3) is ID3v2.4 only; v2.3 readers expect UTF-16 (1)
                tags.add(TXXX(encoding=1 if v23 else 3, desc=field, text=[text]))
    elif isinstance(f, MP4_TYPES):
        for field, text in values.items():
            tags[MP4_PREFIX + field] = [MP4FreeForm(text.encode("utf-8"), AtomDataType.UTF8)]
    else:
        for field, text in values.items():
            tags[field] = [text]


def _save(f: mutagen.FileType, target: str) -> None:
    if isinstance(f, ID3_TYPES):
        # keep the ID3 version the file had: rewriting v2.3 as v2.4 would change other
        # frames too and hide them from v2.3-only readers (older Windows and car stereos)
        version = 3 if f.tags.version < (2, 4, 0) else 4
        f.save(target, v2_version=version)
    else:
        f.save(target)


def _parse(f: mutagen.FileType) -> EmotionTags | None:
    raw = {field: _get(f, field) for field in (*FIELDS, *FIELDS_PROBABILITY, FIELD_MOOD, FIELD_WARNING)}
    if raw[FIELD_VALENCE] is None and raw[FIELD_AROUSAL] is None:
        return None
    values = []
    for field in (FIELD_VALENCE, FIELD_AROUSAL):
        try:
            values.append(float(raw[field] or ""))
        except ValueError:
            raise BadTagValue(f"{field} holds {raw[field]!r}, not a number") from None
    scales = {text: name for name, text in SCALE_TAGS.items()} | {DEAM_CONVENTION_TAG: "deam"}
    written = (raw[FIELD_SCALE] or "0-1").strip()
    scale = scales.get(written)
    if scale is None:
        raise BadTagValue(f"{FIELD_SCALE} holds {raw[FIELD_SCALE]!r}, not 0-1, 1-9 or {DEAM_CONVENTION_TAG}")
    probabilities = None
    if any(raw[field] is not None for field in FIELDS_PROBABILITY):
        try:
            probabilities = tuple(float(raw[field] or "") for field in FIELDS_PROBABILITY)
        except ValueError:
            raise BadTagValue(f"{', '.join(FIELDS_PROBABILITY)} hold "
                              f"{[raw[field] for field in FIELDS_PROBABILITY]}, not four numbers") from None
    mood = raw[FIELD_MOOD]
    return EmotionTags(values[0], values[1], raw[FIELD_MODEL] or "", scale,
                       mood or None, probabilities, deam_convention=written == DEAM_CONVENTION_TAG,
                       warning=raw[FIELD_WARNING] or "")


def read_tags(path: str | os.PathLike[str]) -> EmotionTags | None:
    """The emotion fields of ``path``, or ``None`` when it has none.

    Raises :class:`TagError` for a file that cannot be read and :class:`BadTagValue` for
    fields that hold something other than what :func:`write_tags` writes.
    """
    return _parse(open_tags(path))


def describe_file(path: str | os.PathLike[str]) -> tuple[float | None, str | None]:
    """(length in seconds, the name a player shows: "Artist - Title", or the title) of any
    file mutagen reads; ``None`` for what it cannot tell. Never raises for a bad file."""
    try:
        f = mutagen.File(os.fsencode(path), easy=True)
    except Exception:  # mutagen raises many types for damaged files; this is only cosmetic
        return None, None
    if f is None:
        return None, None
    length = getattr(f.info, "length", None) or None

    def first(*keys: str) -> str:
        for key in keys:
            try:
                values = f.tags[key]
            except (KeyError, ValueError, TypeError):  # TypeError: no tags at all
                continue
            text = getattr(values, "text", values)  # an ID3 frame keeps its strings in .text
            if text:
                return str(text[0]).strip()
        return ""

    # easy keys for MP3, MP4 and Vorbis comments; ID3 frame names for WAV and AIFF
    artist, title = first("artist", "TPE1"), first("title", "TIT2")
    name = f"{artist} - {title}" if artist and title else title or None
    return length, name


# --- writing --------------------------------------------------------------------------------

def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`TagError` when tagging ``path`` would fail or do harm: a read-only
    file (no write permission bit, which counts even for root), a folder where the copy
    cannot be made, or a file with several hard links (replacing it would split them, and
    seeding or deduplicated copies rely on them staying the same bytes)."""
    real = Path(os.path.realpath(path))
    try:
        st = real.stat()
    except OSError as exc:
        raise TagError(_reason(exc)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise TagError("not a regular file")
    if not st.st_mode & 0o222 or not os.access(real, os.W_OK):
        raise TagError("read-only file: left as is")
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise TagError("its folder is not writable (tags are written to a copy beside the file)")
    if st.st_nlink > 1:
        raise TagError(f"has {st.st_nlink} hard links; tagging would split them: left as is")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary copies of ``path`` left by runs that were killed (their process
    is gone); returns what was removed."""
    real = Path(os.path.realpath(path))
    removed = []
    try:
        candidates = list(real.parent.glob(f".{glob.escape(real.name)}.m2e-*.tmp"))
    except OSError:
        return removed
    for temp in candidates:
        m = _TEMP.search(temp.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            try:
                temp.unlink()
                removed.append(temp)
            except OSError:
                pass
    return removed


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def write_tags(path: str | os.PathLike[str], tags: EmotionTags) -> None:
    """Write ``tags`` into ``path`` through a checked copy renamed over it (see the module
    docstring). The file keeps its permissions, owner and extended attributes; its
    modification time becomes now, as for any edit, so backups and library scanners see the change.

    Raises :class:`TagError` with a one-line reason; the original is then unchanged.
    """
    real = Path(os.path.realpath(path))
    check_writable(real)
    original = open_tags(real)
    before = real.stat()
    remove_stale_temps(real)
    temp = real.with_name(f".{real.name}.m2e-{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as dst, open(real, "rb") as src:
            while block := src.read(1 << 20):
                dst.write(block)
        copy = type(original)(os.fsencode(temp))
        # none of another model's probabilities, nor another prediction's warning
        _set(copy, tags.fields(), remove=(*FIELDS_PROBABILITY, FIELD_WARNING))
        _save(copy, os.fsencode(temp))
        check = type(original)(os.fsencode(temp))
        stored = _parse(check)
        wanted = tags.fields()
        if stored is None or any(stored.fields().get(k) != v for k, v in wanted.items()):
            raise TagError("the tags did not read back as written")
        if abs(check.info.length - original.info.length) > 0.01:
            raise TagError("the tagged copy no longer reads as the same audio")
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        _copy_xattrs(real, temp)
        os.chmod(temp, stat.S_IMODE(before.st_mode))
        try:
            os.chown(temp, before.st_uid, before.st_gid)
        except PermissionError:  # not ours to give away; the rename still keeps the data
            pass
        now = real.stat()
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
            raise TagError("the file changed while it was being tagged: left as is")
        os.replace(temp, real)
    except TagError:
        _discard(temp)
        raise
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as exc:
        _discard(temp)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise TagError("no space left on the device for the tagged copy") from exc
        raise TagError(f"could not write the tags ({_reason(exc)})") from exc
    except BaseException:
        _discard(temp)
        raise
    _fsync_dir(real.parent)


def _copy_xattrs(src: Path, dst: Path) -> None:
    """Carry the file's extended attributes (user metadata, security labels) over to the
    copy, as far as this system and our permissions allow."""
    if not hasattr(os, "listxattr"):  # not on Linux
        return
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        try:
            os.setxattr(dst, name, os.getxattr(src, name))
        except OSError:
            pass


def _discard(temp: Path) -> None:
    try:
        temp.unlink()
    except FileNotFoundError:
        pass

