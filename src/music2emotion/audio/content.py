"""What a file holds, from its bytes rather than its name: the container its first bytes
announce (:func:`sniff`), whether an Ogg file's pages are whole (:func:`ogg_scan`), what a
container says of where it should end (:func:`pcm_ending`, :func:`mp4_ending`), and a view
of a file from an offset on, with bytes mended (:class:`FileView`).

The name is no evidence: downloaders save AAC as ``.mp3``, and libsndfile, given a name
ending in ``.mp3``, lets its MP3 decoder try any content it does not recognise; on AAC data,
whose bytes hold runs of false MP3 frame headers, that decodes 0.0 s of audio.
"""

from __future__ import annotations

import bisect
import io
import mmap
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .decoder import MAX_DAMAGED_SHARE, Ending
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
_OGG_EOS = 4  # the flag of a stream's last page
_NO_GRANULE = 2**64 - 1  # -1: no packet ends on the page
# Ogg's CRC-32 is the unreflected one (polynomial 0x04C11DB7, no initial or final XOR);
# zlib's is reflected, so bytes go in and the result comes out bit-reversed.
_REVERSE_BITS = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _ogg_crc(page: bytes) -> int:
    reflected = zlib.crc32(page.translate(_REVERSE_BITS), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


@dataclass
class OggScan:
    """An Ogg file's pages, read once (:func:`ogg_scan`).

    Attributes
    ----------
    pages : int
        Whole pages.
    damaged : dict of int to bytes
        Pages whose checksum fails though their structure holds (a page header that
        belongs to the stream, the next page where this one says it ends): where each
        page's checksum lies, and the checksum its bytes have now. The damage is then in
        the page's data, which a decoder may still decode.
    headers : set of int
        Those among the stream headers' pages (before the first page of audio): without
        them nothing decodes, so they are always given to the decoder as they are.
    gaps : list of (int, int)
        Stretches of bytes that are no page at all (a damaged page header, bytes lost,
        zeroed or doubled), left out of what a decoder reads (:class:`FileView`).
    cut : bool
        The file ends inside a page, or its last page does not end the stream: a download
        that stopped early. libsndfile and FFmpeg read an Ogg file's length from its last
        whole page, so nothing else tells it.
    """

    pages: int = 0
    damaged: dict[int, bytes] = field(default_factory=dict)
    headers: set[int] = field(default_factory=set)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    cut: bool = False

    @property
    def kept(self) -> float:
        """The share of the pages to decode as they are though their checksum fails: every
        damaged page of audio when skipping them would lose more than ``MAX_DAMAGED_SHARE``
        of the file (bits flipped all over it: MP3 and FLAC decoders decode such frames as
        they are too; measured on a 30 s Opus file with 0.1 % of its bytes flipped, 28 of 30
        pages), else none (a damaged stretch, whose pages are skipped as players skip them,
        and counted as lost)."""
        audio = len(self.damaged.keys() - self.headers)
        return audio / self.pages if self.pages and audio > MAX_DAMAGED_SHARE * self.pages else 0.0

    def view(self, path: Path) -> FileView:
        """The file as a decoder should read it: without its :attr:`gaps`, with the
        checksums of damaged pages mended so that a decoder takes them, the stream headers'
        always (without them nothing decodes; if their data is damaged the decoder says so),
        the audio pages' when :attr:`kept`."""
        mends = {at: crc for at, crc in self.damaged.items() if self.kept or at in self.headers}
        return FileView(path, 0, mends, self.gaps)


def ogg_scan(path: Path) -> OggScan:
    """Read the Ogg file ``path`` page by page (an ID3v2 tag in front is not a page):
    which pages are damaged or broken, and whether it is cut short (:class:`OggScan`).

    libsndfile's Ogg decoders do not say when they skip a damaged page: measured on a 30 s
    Vorbis file with 3 kB overwritten at 10 s, reads of 20 s blocks returned 30.0 s (part of
    it stale), reads of 1 s blocks 28.7 s, and no error, so a damaged file goes to FFmpeg,
    whose timestamps tell what was lost. Reading the pages costs one pass over the file's
    bytes (zlib computes the checksums).
    """
    scan = OggScan()
    with open(path, "rb") as f:
        start = skip_id3(f)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            size, i = len(data), start
            serials: set[bytes] = set()
            in_headers = True
            last_flags = _OGG_EOS  # bytes with no whole page are not a cut Ogg stream

            def resync() -> int:
                """Where the next page may start, past the bytes at ``i`` that are none."""
                nxt = data.find(b"OggS", i + 1)
                scan.gaps.append((i, size if nxt < 0 else nxt))
                return nxt

            while i < size:
                header = data[i : i + _OGG_HEADER]
                if header[:4] != b"OggS":
                    if last_flags & _OGG_EOS and scan.pages:
                        break  # bytes after the stream's end (a tag): not the stream's
                    i = resync()
                    if i < 0:
                        break
                    continue
                lacing = data[i + _OGG_HEADER : i + _OGG_HEADER + header[26]] if len(header) == _OGG_HEADER else b""
                end = i + _OGG_HEADER + len(lacing) + sum(lacing)
                if len(header) < _OGG_HEADER or len(lacing) < header[26] or end > size:
                    if data.find(b"OggS", i + 1) < 0:
                        scan.cut = True  # the last page cut short
                        break
                    i = resync()  # a damaged page header, whose lengths say nothing
                    continue
                serial = header[14:18]
                if header[5] & 2 or not serials:  # the first page of a stream
                    serials.add(serial)
                granule = int.from_bytes(header[6:14], "little")
                page = header[:22] + b"\0\0\0\0" + header[26:] + data[i + _OGG_HEADER : end]
                crc = _ogg_crc(page)
                if crc != int.from_bytes(header[_OGG_CRC], "little"):
                    # damaged: in the data only if the header holds (the stream's serial, the
                    # next page where this one says it ends)
                    if not (header[4] == 0 and header[5] < 8 and serial in serials
                            and (end == size or data[end : end + 4] == b"OggS")):
                        i = resync()
                        if i < 0:
                            break
                        continue
                    scan.damaged[i + _OGG_CRC.start] = crc.to_bytes(4, "little")
                    if in_headers and granule in (0, _NO_GRANULE):
                        scan.headers.add(i + _OGG_CRC.start)
                in_headers = in_headers and granule in (0, _NO_GRANULE)
                scan.pages += 1
                last_flags = header[5]
                i = end
            if not last_flags & _OGG_EOS:
                scan.cut = True  # no page ends the stream: the rest is missing
    return scan


# --- where a container says it ends -----------------------------------------------------------

# FLAC's checksums: CRC-8 (polynomial 0x07) over a frame header, CRC-16 (0x8005) over a frame


def _crc_table(poly: int, bits: int) -> tuple[int, ...]:
    top, mask = 1 << (bits - 1), (1 << bits) - 1
    table = []
    for byte in range(256):
        crc = byte << (bits - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly if crc & top else crc << 1) & mask
        table.append(crc)
    return tuple(table)


_CRC8, _CRC16 = _crc_table(0x07, 8), _crc_table(0x8005, 16)
# The end of a FLAC file read to find its last frames: three frames of 4,096 16-bit stereo
# samples stored verbatim, the most a CD-quality encoder writes
_FLAC_TAIL_BYTES = 64 * 1024


def _crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ b]
    return crc


def _flac_frame_at(buf: bytes, i: int) -> bool:
    """Whether a FLAC frame header whose CRC-8 holds starts at ``buf[i]``."""
    if i + 6 > len(buf) or buf[i] != 0xFF or buf[i + 1] & 0xFE != 0xF8:
        return False
    block, rate, bits = buf[i + 2] >> 4, buf[i + 2] & 0xF, (buf[i + 3] >> 1) & 7
    if block == 0 or rate == 15 or buf[i + 3] >> 4 > 10 or bits == 3 or buf[i + 3] & 1:
        return False
    j = i + 4
    ones = 0  # the frame or sample number is UTF-8 coded: its leading ones count its bytes
    while ones < 8 and buf[j] & (0x80 >> ones):
        ones += 1
    if ones == 1 or ones == 8:
        return False
    j += max(ones, 1) + (1 if block == 6 else 2 if block == 7 else 0) + (1 if rate == 12 else 2 if rate in (13, 14) else 0)
    if j >= len(buf):
        return False
    crc = 0
    for b in buf[i:j]:
        crc = _CRC8[crc ^ b]
    return crc == buf[j]


def flac_last_frame_cut(path: Path) -> bool:
    """Whether the FLAC file ``path`` ends inside a frame: its last frame, the last whose
    start the frame before it confirms (a whole frame, by its CRC-16, ends there), is not
    whole. FLAC's header states the length, but libsndfile and FFmpeg stop where the bytes
    do either way; this tells the cut from damage near the end, and spares decoding the
    file a second time to look past it."""
    with open(path, "rb") as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(max(0, size - _FLAC_TAIL_BYTES))
        buf = f.read()
    if len(buf) >= 128 and buf[-128:-125] == b"TAG":
        buf = buf[:-128]  # an ID3v1 tag after the audio
    starts = [i for i in range(len(buf) - 1) if buf[i] == 0xFF and _flac_frame_at(buf, i)]
    for k in range(len(starts) - 1, 0, -1):  # from the end: a few checksums, not all
        if any(_crc16(buf[a : starts[k]]) == 0 for a in reversed(starts[max(0, k - 3) : k])):
            return _crc16(buf[starts[k] :]) != 0
    return False

# A chunk walk reads no further than this into a header for the audio's chunk
_HEADER_BYTES = 1 << 20


def _extended(b: bytes) -> float:
    """An 80-bit IEEE extended float (AIFF's sample rate)."""
    exponent, mantissa = struct.unpack(">HQ", b[:10])
    sign = -1.0 if exponent & 0x8000 else 1.0
    exponent &= 0x7FFF
    return 0.0 if exponent == 0 else sign * mantissa * 2.0 ** (exponent - 16383 - 63)


def pcm_ending(path: Path, content: Content | None) -> Ending:
    """What a WAV or AIFF file's header says of its end: when its audio chunk states more
    bytes than the file holds, the file is cut and the header's count is the length it
    should have (libsndfile declares only the frames present: measured on a WAV cut to
    half, 3.0 s of a 6.0 s header, and no word); anything else says nothing."""
    if content not in (WAV, AIFF):
        return Ending()
    with open(path, "rb") as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        head = f.read(_HEADER_BYTES)
    if content is WAV:
        if head[:4] != b"RIFF":
            return Ending()  # RF64 and BW64 state their sizes elsewhere
        order, i, header = "<", 12, {}
    else:
        order, i, header = ">", 12, {}
    while i + 8 <= len(head):
        kind, n = head[i : i + 4], struct.unpack(order + "I", head[i + 4 : i + 8])[0]
        body = head[i + 8 : i + 8 + min(n, 64)]
        if kind == b"fmt " and len(body) >= 16:
            header["rate"] = struct.unpack("<I", body[4:8])[0]
            header["block"] = struct.unpack("<H", body[12:14])[0]
        elif kind == b"COMM" and len(body) >= 18:
            header["frames"] = struct.unpack(">I", body[2:6])[0]
            header["rate"] = _extended(body[8:18])
        elif kind in (b"data", b"SSND"):
            if i + 8 + n <= size or n in (0, 0xFFFFFFFF) or not header.get("rate"):
                return Ending()
            if kind == b"data":
                if not header.get("block"):
                    return Ending()
                frames = n // header["block"]
            else:
                frames = header.get("frames", 0)
            return Ending(cut=True, seconds=frames / header["rate"] if frames else None)
        i += 8 + n + (n & 1)  # chunks are padded to an even length
    return Ending()


def mp4_ending(path: Path) -> Ending:
    """What an MP4 file's top-level boxes say of its end: a box that runs past the end of
    the file is cut (the sample tables then say how long it should be); otherwise every
    byte the boxes state is there (``complete``: bytes after them that are no box were
    added, not lost), so audio short of its tables' length was lost to damage (measured:
    bits flipped in a 30 s M4A's sample tables stopped FFmpeg's demuxer at 0.6-23.8 s, with
    every box whole)."""
    with open(path, "rb") as f:
        size = f.seek(0, io.SEEK_END)
        i = 0
        while i < size:
            f.seek(i)
            head = f.read(16)
            if len(head) < 8:
                if any(head):
                    return Ending(cut=True)  # a box header cut short
                break  # padding
            n, kind = struct.unpack(">I4s", head[:8])
            if n == 1 and len(head) == 16:
                n = struct.unpack(">Q", head[8:16])[0]
            elif n == 0:
                n = size - i  # the last box, to the end of the file
            if n < 8 or not kind.isalnum():
                break  # not a box: bytes added or damaged, none missing
            if i + n > size:
                return Ending(cut=True)
            i += n
    return Ending(complete=True)


def _vint(buf: bytes, i: int) -> tuple[int, int] | None:
    """The EBML variable-length integer at ``buf[i]``: its value (-1 for the reserved
    "unknown size") and its length in bytes; ``None`` when there is none."""
    if i >= len(buf) or not buf[i]:
        return None
    n = 9 - buf[i].bit_length()
    if i + n > len(buf):
        return None
    value = int.from_bytes(buf[i : i + n], "big") & ((1 << (7 * n)) - 1)
    return (-1 if value == (1 << (7 * n)) - 1 else value), n


def matroska_ending(path: Path) -> Ending:
    """What a Matroska/WebM file's Segment says of its end: one that runs past the end of
    the file is cut; one that ends inside it holds every byte it states (``complete``), so
    audio short of its Duration was lost to damage (a damaged cluster, which FFmpeg passes
    over to the next: in a file of one cluster, all that follows the damage); a Segment of
    unknown size (a live recording) says nothing."""
    with open(path, "rb") as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        head = f.read(4096)
    i = 4  # past the EBML header's ID
    length = _vint(head, i)
    if length is None or length[0] < 0:
        return Ending()
    i += length[1] + length[0]
    if head[i : i + 4] != b"\x18\x53\x80\x67":  # the Segment
        return Ending()
    length = _vint(head, i + 4)
    if length is None or length[0] < 0:
        return Ending()
    end = i + 4 + length[1] + length[0]
    return Ending(cut=True) if end > size else Ending(complete=True)


# --- a view of a file -------------------------------------------------------------------------


class FileView(io.RawIOBase):
    """A file seen from ``offset`` on, as if the bytes before it were not there (an MP3
    from its first real frame, for a decoder that would stumble on what lies before),
    without the byte ranges ``gaps`` (stretches of an Ogg file that are no page: FFmpeg's
    Ogg demuxer gives up after 64 kB without one, so a zeroed stretch of 64 kB ended its
    reading there), and with bytes at some offsets of the file replaced (``mends``: a
    damaged Ogg page's checksum, which decoders would refuse the page for)."""

    def __init__(self, path: Path, offset: int = 0, mends: dict[int, bytes] | None = None,
                 gaps: list[tuple[int, int]] | None = None):
        self.file = open(path, "rb")  # noqa: SIM115 - closed with this object
        size = self.file.seek(0, io.SEEK_END)
        self.mends = sorted((mends or {}).items())
        # the parts shown, one after the other: (where in the view, where in the file, bytes)
        self.parts: list[tuple[int, int, int]] = []
        at, shown = offset, 0
        for start, end in sorted(gaps or ()) + [(size, size)]:
            if start > at:
                self.parts.append((shown, at, start - at))
                shown += start - at
            at = max(at, end)
        self.size = shown
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = 0
        k = bisect.bisect_right([p[0] for p in self.parts], self.pos) - 1
        while n < len(view) and 0 <= k < len(self.parts):
            shown, at, length = self.parts[k]
            if self.pos >= shown + length:
                k += 1
                continue
            where = at + self.pos - shown
            self.file.seek(where)
            got = self.file.readinto(view[n : n + min(len(view) - n, shown + length - self.pos)])
            if not got:
                break
            for mend_at, data in self.mends:
                lo, hi = max(mend_at, where), min(mend_at + len(data), where + got)
                if lo < hi:
                    view[n + lo - where : n + hi - where] = data[lo - mend_at : hi - mend_at]
            n += got
            self.pos += got
        return n

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self.file.close()
        super().close()
