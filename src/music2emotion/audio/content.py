"""What a file holds, from its bytes rather than its name: the container its first bytes
announce (:func:`sniff`), and whether an Ogg file's pages are whole (:func:`ogg_damaged`).

The name is no evidence: downloaders save AAC as ``.mp3``, and libsndfile, given a name
ending in ``.mp3``, lets its MP3 decoder try any content it does not recognise; on AAC data,
whose bytes hold runs of false MP3 frame headers, that decodes 0.0 s of audio.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from .mpeg import adts_at, mpeg_at, skip_id3

# Bytes read to tell a file's content: room for the frames MP3_CHAIN needs at the largest
# MPEG audio frame (1,728 bytes: layer II at 384 kbit/s, 32 kHz) or ADTS frame of a stereo AAC stream.
SNIFF_BYTES = 8 * 1024


@dataclass(frozen=True)
class Content:
    """A kind of file: ``name`` as messages say it, and whether libsndfile reads it (else
    only FFmpeg does)."""

    name: str
    sndfile: bool


WAV = Content("WAV", True)
WAVE64 = Content("Wave64", True)
AIFF = Content("AIFF", True)
AU = Content("AU", True)
CAF = Content("CAF", True)
FLAC = Content("FLAC", True)
OGG = Content("Ogg", True)
MPEG = Content("MPEG audio", True)
MP4 = Content("MP4", False)
MATROSKA = Content("Matroska/WebM", False)
ASF = Content("ASF/WMA", False)
AVI = Content("AVI", False)
APE = Content("APE", False)
WAVPACK = Content("WavPack", False)
ADTS = Content("AAC (ADTS)", False)

# (offset, magic bytes, content), looked for after an ID3v2 tag, which tagging tools put in
# front of any format
_MAGIC = (
    (0, b"fLaC", FLAC), (0, b"OggS", OGG), (0, b"FORM", AIFF), (0, b".snd", AU), (0, b"caff", CAF),
    (0, b"RF64", WAV), (0, b"BW64", WAV), (0, b"riff\x2e\x91\xcf\x11", WAVE64),
    (4, b"ftyp", MP4), (4, b"moov", MP4), (4, b"mdat", MP4), (4, b"wide", MP4), (4, b"free", MP4),
    (0, b"\x1aE\xdf\xa3", MATROSKA), (0, b"0&\xb2u\x8ef\xcf\x11", ASF),
    (0, b"MAC ", APE), (0, b"wvpk", WAVPACK),
)
_RIFF = {b"WAVE": WAV, b"AVI ": AVI}


def sniff(path: Path) -> Content | None:
    """The content ``path``'s first bytes announce; ``None`` when they announce nothing this
    module knows (which may still be an MP3 behind junk, or a format only libsndfile or
    FFmpeg knows)."""
    with open(path, "rb") as f:
        skip_id3(f)
        head = f.read(SNIFF_BYTES)
    for offset, magic, content in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return content
    if head[:4] == b"RIFF":
        return _RIFF.get(head[8:12])
    if mpeg_at(head):
        return MPEG
    if adts_at(head):
        return ADTS
    return None


# --- Ogg pages ------------------------------------------------------------------------------

# An Ogg page: "OggS", version, flags, granule position (8), serial (4), sequence (4), CRC
# (4), the number of segments and their lengths, then the segments.
_OGG_HEADER = 27
_OGG_CRC = slice(22, 26)
# Ogg's CRC-32 is the unreflected one (polynomial 0x04C11DB7, no initial or final XOR);
# zlib's is reflected, so bytes go in and the result comes out bit-reversed.
_REVERSE_BITS = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _ogg_crc(page: bytes) -> int:
    reflected = zlib.crc32(page.translate(_REVERSE_BITS), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def ogg_damaged(path: Path) -> bool:
    """Whether a page of the Ogg file ``path`` is damaged: its checksum does not match, or
    the next page does not start where it ends (an ID3v2 tag in front is not a page). A last
    page cut short is not damage: libsndfile reads an Ogg file's length from its last whole
    page, so a cut file declares, and gives, what remains.

    libsndfile's Ogg decoders do not say when they skip a damaged page: measured on a 30 s
    Vorbis file with 3 kB overwritten at 10 s, reads of 20 s blocks returned 30.0 s (part of
    it stale), reads of 1 s blocks 28.7 s, and no error, so such a file goes to FFmpeg,
    whose timestamps tell what was lost. Reading the pages costs one pass over the file's
    bytes (zlib computes the checksums).
    """
    with open(path, "rb") as f:
        skip_id3(f)
        while True:
            header = f.read(_OGG_HEADER)
            if len(header) < _OGG_HEADER:
                return False  # the end, or a last page cut short
            if header[:4] != b"OggS":
                return True
            lacing = f.read(header[26])
            body = f.read(sum(lacing))
            if len(lacing) < header[26] or len(body) < sum(lacing):
                return False  # cut short: truncated, not damaged
            page = header[:22] + b"\0\0\0\0" + header[26:] + lacing + body
            if _ogg_crc(page) != int.from_bytes(header[_OGG_CRC], "little"):
                return True
