"""Font discovery for the glyph corpora: faces of an unpacked package, their names, digit coverage and style.

``specs/corpora.md`` (glyph-digits): faces are grouped into style domains by package, with a per-face
override by family-name keyword (Mono -> mono, Serif -> serif, Sans -> sans) inside the serif/sans/mono
packages. [reconstruction] A fixed-pitch face (``post.isFixedPitch``) in those packages also counts as mono,
a proportional face in a mono package as sans, and ``FAMILY_DOMAIN_OVERRIDES`` names the few families
whose names carry no keyword (Chrome OS core fonts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont, TTLibError

FONT_SUFFIXES = (".ttf", ".otf")
DIGITS = "0123456789"
TEXT_DOMAINS = ("serif", "sans", "mono")  # domains where family-name keywords may move a face
FAMILY_DOMAIN_OVERRIDES = {
    "Tinos": "serif",
    "Cousine": "mono",
    "Arimo": "sans",
    "DejaVu Math TeX Gyre": "serif",
}
# style words removed from a family name so that a family's widths and weights stay together
_STYLE_WORDS = re.compile(
    r"\b(Thin|Hairline|ExtraLight|Extra Light|UltraLight|Light|Book|Regular|Medium|SemiBold|Semi Bold|"
    r"DemiBold|Demi|Bold|ExtraBold|Extra Bold|UltraBold|Black|Heavy|Italic|Oblique|Condensed|Cond|"
    r"SemiCondensed|"
    r"Narrow|Extended|Expanded|Wide|Compressed|Caption|Display|Text|Titling|Poster|SmallCaps|Small Caps|SC|"
    r"Cn|Ex|It|Bd|Lt|Md|Blk|Hv|Th|No2|NoLoopK|LargeLineHeight)\b",
    flags=re.I,
)
_GLUED_STYLE = re.compile(r"(?<=[A-Za-z])(Bold|Italic|Oblique|Condensed|Light|Regular|Medium)$")


@dataclass(frozen=True)
class FontFace:
    """One face (font file) of a package, with the names and flags the corpus needs."""

    package: str
    path: Path
    member: str  # path inside the package (as in the .deb)
    family: str  # family name with weight/width words removed: the unit of the train/test split
    face: str  # full face name
    fixed_pitch: bool
    has_digits: bool


def _name(font: TTFont, *ids: int) -> str:
    table = font["name"] if "name" in font else None
    if table is None:
        return ""
    for name_id in ids:
        record = table.getDebugName(name_id)
        if record:
            return record.strip()
    return ""


def base_family(name: str) -> str:
    """A family name without weight, width and slope words ("DejaVu Sans Condensed" -> "DejaVu Sans")."""
    stripped = _STYLE_WORDS.sub(" ", name)
    while (glued := _GLUED_STYLE.sub("", stripped)) != stripped:  # "OCRABold" -> "OCRA"
        stripped = glued
    stripped = re.sub(r"\s+", " ", stripped).strip(" -_")
    return stripped or name.strip()


def read_face(package: str, path: Path, member: str) -> FontFace | None:
    """Names, pitch and digit coverage of a font file; ``None`` if fontTools cannot read it."""
    try:
        font = TTFont(path, lazy=True, fontNumber=0)
        cmap = font.getBestCmap() or {}
        family = _name(font, 16, 1) or path.stem
        face = _name(font, 4) or path.stem
        fixed = bool(font["post"].isFixedPitch) if "post" in font else False
        font.close()
    except (TTLibError, OSError, KeyError, AssertionError, ValueError, IndexError, TypeError):
        return None
    has_digits = all(ord(d) in cmap for d in DIGITS)
    return FontFace(package, path, member, base_family(family), face, fixed, has_digits)


def package_faces(package: str, root: Path) -> list[FontFace]:
    """Every readable .ttf/.otf face under an unpacked package root (or a font folder), sorted by path."""
    faces = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file()):
        face = read_face(package, path, "./" + path.relative_to(root).as_posix())
        if face is not None:
            faces.append(face)
    return faces


def style_domain(face: FontFace, package_domain: str) -> str:
    """The style domain of a face: its package's domain, moved by name keyword or pitch in text packages."""
    if package_domain not in TEXT_DOMAINS:
        return package_domain
    if face.family in FAMILY_DOMAIN_OVERRIDES:
        return FAMILY_DOMAIN_OVERRIDES[face.family]
    name = f"{face.family} {face.face}".lower()  # substrings: "FreeMono", "FreeSerif" carry keywords too
    if "mono" in name or face.fixed_pitch:
        return "mono"
    if "serif" in name and "sans" not in name:
        return "serif"
    if "sans" in name:
        return "sans"
    if package_domain == "mono":  # a proportional face in a mono package (e.g. "Go")
        return "sans"
    return package_domain
