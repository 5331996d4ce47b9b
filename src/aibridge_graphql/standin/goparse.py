"""Go standard-library behaviour the stand-in's error messages depend on.

Coder builds its search-query messages with Go's `%q` (strconv.Quote), parses UUIDs with
google/uuid and timestamps with `time.Parse(time.RFC3339Nano, ...)`. The messages carry those
libraries' own text, so the pieces below reproduce their rules (not their code) to keep the
stand-in's 400 bodies identical to Coder's.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

RFC3339NANO_LAYOUT = "2006-01-02T15:04:05.999999999Z07:00"

_NS_PER_S = 1_000_000_000
_SIMPLE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def _go_printable(char: str) -> bool:
    """Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and ASCII space."""
    return char == " " or unicodedata.category(char)[0] in "LMNPS"


def go_quote(text: str) -> str:
    """Go's `%q` / strconv.Quote of a string: `"a\\"b"`, non-printables escaped."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[char])
        elif _go_printable(char) and not 0xD800 <= code <= 0xDFFF:
            out.append(char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # not valid UTF-8: Go sees U+FFFD
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_to_lower(text: str) -> str:
    """strings.ToLower: per-rune simple case mapping (Python's lower() may expand a rune)."""
    return "".join(char.lower()[0] for char in text)


def go_to_upper(text: str) -> str:
    """strings.ToUpper: per-rune simple case mapping; runes whose mapping expands stay as-is."""
    return "".join(up if len(up := char.upper()) == 1 else char for char in text)


_HEX = frozenset(b"0123456789abcdefABCDEF")
_UUID_HEX_AT = (0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34)


def parse_go_uuid(text: str) -> str | None:
    """google/uuid.Parse: canonical, `{...}`, `urn:uuid:...` or 32-hex forms; lowercase or None."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) == 32:
        return _canonical(raw) if all(b in _HEX for b in raw) else None
    if len(raw) == 45:
        if raw[:9].lower() != b"urn:uuid:":
            return None
        raw = raw[9:]
    elif len(raw) == 38:
        raw = raw[1:]  # google/uuid skips the opening brace without checking either brace
    elif len(raw) != 36:
        return None
    if any(raw[i] != ord("-") for i in (8, 13, 18, 23)):
        return None
    digits = b"".join(raw[i : i + 2] for i in _UUID_HEX_AT)
    return _canonical(digits) if all(b in _HEX for b in digits) else None


def _canonical(hex32: bytes) -> str:
    h = hex32.decode("ascii").lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class GoTimeError(ValueError):
    """A `time.Parse` failure; `str()` is Go's ParseError text."""


def _time_quote(raw: bytes) -> str:
    """The time package's own quote(): every byte outside printable ASCII becomes `\\xNN`."""
    out = ['"']
    for byte in raw:
        if byte < 0x20 or byte >= 0x80:
            out.append(f"\\x{byte:02x}")
        else:
            if byte in (0x22, 0x5C):
                out.append("\\")
            out.append(chr(byte))
    out.append('"')
    return "".join(out)


class _RFC3339NanoParser:
    """time.Parse(RFC3339Nano, value), walking the layout's chunks as Go does, on bytes."""

    def __init__(self, value: str) -> None:
        self.whole = value.encode("utf-8", "surrogatepass")
        self.rest = self.whole

    def cannot_parse(self, elem: bytes, layout_elem: str) -> GoTimeError:
        return GoTimeError(
            f"parsing time {_time_quote(self.whole)} as {_time_quote(RFC3339NANO_LAYOUT.encode())}"
            f": cannot parse {_time_quote(elem)} as {_time_quote(layout_elem.encode())}"
        )

    def message(self, text: str) -> GoTimeError:
        return GoTimeError(f"parsing time {_time_quote(self.whole)}{text}")

    def literal(self, prefix: str) -> None:
        if not self.rest.startswith(prefix.encode()):
            raise self.cannot_parse(self.rest, prefix)
        self.rest = self.rest[len(prefix) :]

    def number(self, layout_elem: str, *, fixed: bool, valid: range, name: str) -> int:
        """getnum: one or two digits (exactly two when fixed), then Go's in-loop range check."""
        hold = self.rest
        parsed = _getnum(hold, fixed=fixed)
        if parsed is None:
            raise self.cannot_parse(hold, layout_elem)
        number, self.rest = parsed
        if number not in valid:
            raise self.message(f": {name} out of range")
        return number

    def year(self) -> int:
        hold = self.rest
        digits = hold[:4]
        if len(hold) < 4 or not digits.isdigit():
            raise self.cannot_parse(hold, "2006")
        self.rest = hold[4:]
        return int(digits)

    def fraction(self) -> int:
        """`.999999999`: optional; any number of digits, only the first nine count."""
        rest = self.rest
        if len(rest) < 2 or rest[0:1] not in (b".", b",") or not rest[1:2].isdigit():
            return 0
        end = 1
        while end < len(rest) and rest[end : end + 1].isdigit():
            end += 1
        digits = rest[1:end][:9]
        self.rest = rest[end:]
        return int(digits.ljust(9, b"0"))

    def zone_offset_s(self) -> int:
        """`Z07:00`: `Z`, or `±hh:mm` (Go accepts up to 24 h and 60 min here)."""
        hold = self.rest
        if hold[:1] == b"Z":
            self.rest = hold[1:]
            return 0
        if len(hold) < 6 or hold[3:4] != b":":
            raise self.cannot_parse(hold, "Z07:00")
        sign = hold[0:1]
        hours = _getnum(hold[1:3], fixed=True)
        minutes = _getnum(hold[4:6], fixed=True) if hours else None
        hour, minute = (hours or (0, b""))[0], (minutes or (0, b""))[0]
        # Go reports an out-of-range offset before a malformed one; the minute check wins.
        if minute > 60:
            raise self.message(": time zone offset minute out of range")
        if hour > 24:
            raise self.message(": time zone offset hour out of range")
        if hours is None or minutes is None or sign not in (b"+", b"-"):
            raise self.cannot_parse(hold, "Z07:00")
        self.rest = hold[6:]
        offset = (hour * 60 + minute) * 60
        return -offset if sign == b"-" else offset

    def parse_ns(self) -> int:
        """Nanoseconds since the Unix epoch, UTC."""
        year = self.year()
        self.literal("-")
        month = self.number("01", fixed=True, valid=range(1, 13), name="month")
        self.literal("-")
        day = self.number("02", fixed=True, valid=range(100), name="day")  # checked below
        self.literal("T")
        hour = self.number("15", fixed=False, valid=range(24), name="hour")
        self.literal(":")
        minute = self.number("04", fixed=True, valid=range(60), name="minute")
        self.literal(":")
        second = self.number("05", fixed=True, valid=range(60), name="second")
        nanos = self.fraction()
        offset = self.zone_offset_s()
        if self.rest:
            raise self.message(f": extra text: {_time_quote(self.rest)}")
        if not 1 <= day <= _days_in(month, year):
            raise self.message(": day out of range")
        seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        return (seconds - offset) * _NS_PER_S + nanos


def _getnum(raw: bytes, *, fixed: bool) -> tuple[int, bytes] | None:
    if not raw[:1].isdigit():
        return None
    if not raw[1:2].isdigit():
        return None if fixed else (int(raw[:1]), raw[1:])
    return int(raw[:2]), raw[2:]


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date; works for year 0 (datetime cannot)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


GO_ZERO_TIME_NS = _days_from_civil(1, 1, 1) * 86400 * _NS_PER_S


def parse_rfc3339nano(value: str) -> int:
    """Go's time.Parse(time.RFC3339Nano, value) in ns since the epoch (UTC); raises GoTimeError."""
    return _RFC3339NanoParser(value).parse_ns()


# Bytes net/url's escape(s, encodePath) leaves alone: unreserved characters plus the reserved
# ones a path may carry ("$&+,/:;=@"); "?" and everything else is percent-encoded.
_PATH_SAFE = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~$&+,/:;=@"
)


def go_escape_path(text: str) -> str:
    """net/url's path escaping (upper-case hex), as `URL.EscapedPath` produces by default."""
    return "".join(
        chr(byte) if byte in _PATH_SAFE else f"%{byte:02X}"
        for byte in text.encode("utf-8", "surrogatepass")
    )


def chi_path_param(raw: str) -> str:
    """A path parameter as chi hands it to Coder's handler, which does not decode it.

    Go keeps `URL.RawPath` only when the request's encoding differs from its default one; chi
    then routes on the raw, still-encoded path. So a segment encoded the default way arrives
    decoded, and one with any extra encoding (`%3A` for ":", say) arrives encoded, verbatim.
    """
    decoded = unquote(raw, errors="surrogateescape")
    return decoded if go_escape_path(decoded) == raw else raw
