"""One log line read as data: its own timestamp, its severity in any common style, and its message part."""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Level", "ParsedLine", "parse_line"]

MAX_LINE_CHARS = 2000
_HEAD_CHARS = 120
_YEARLESS = 2000  # a leap year, so "Feb 29" parses; replaced by the log's own year where it has one


class Level(IntEnum):
    """Severity as the software wrote it; UNSET when the line carries no level at all."""

    UNSET = 0
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40


@dataclass(frozen=True)
class ParsedLine:
    """A line's timestamp (epoch seconds, None when it has none), whether that stamp lacked a year, its level,
    and the message part that evidence is read from (quoted and user-supplied parts removed)."""

    raw: str
    timestamp: float | None
    yearless: bool
    level: Level
    message: str
    zoned: bool = False
    """The stamp names its time zone (Z, an offset, epoch seconds); a zone-less stamp is some host's local time."""


_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}
_MONTH = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_CLOCK = r"(?P<H>\d{1,2}):(?P<M>\d{2}):(?P<S>\d{2})(?P<frac>[.,]\d+)?"
_ZONE = r"\s?(?P<tz>Z|[+-]\d{2}:?\d{2}|UTC|GMT)?"
_STAMPS: tuple[re.Pattern[str], ...] = (
    # ISO 8601 and its relatives: 2026-11-27T09:12:44Z, Java "2026-11-27 09:12:44,120", nginx "2026/11/27 09:12:44",
    # BGL "2005-06-03-15.42.50.675872"
    re.compile(
        r"(?P<y>\d{4})[-/](?P<m>\d{2})[-/](?P<d>\d{2})(?:[T ] ?|-(?=\d{2}\.))"
        r"(?P<H>\d{1,2})[:.](?P<M>\d{2})[:.](?P<S>\d{2})(?P<frac>[.,]\d+)?" + _ZONE
    ),
    # Apache error log "[Wed Oct 11 14:32:52.123 2026]"
    re.compile(r"\w{3} " + _MONTH + r" +(?P<d>\d{1,2}) " + _CLOCK + r" (?P<y>\d{4})"),
    # Apache access log "[10/Oct/2026:13:55:36 -0700]"
    re.compile(r"(?P<d>\d{2})/" + _MONTH + r"/(?P<y>\d{4}):" + _CLOCK + r"(?: (?P<tz>[+-]\d{4}))?"),
    # Tomcat "14-Mar-2026 09:22:10.450"
    re.compile(r"(?P<d>\d{2})-" + _MONTH + r"-(?P<y>\d{4}) " + _CLOCK),
    # Redis "14 Mar 2026 09:04:48.123", RFC 2822 "Wed, 11 Oct 2026 14:32:52 +0000"
    re.compile(r"(?P<d>\d{1,2}) " + _MONTH + r" (?P<y>\d{4}) " + _CLOCK + _ZONE),
    # "11/27/2026 9:12:44 AM" (Windows en-US) or "27/11/2026 09:12:44" (en-GB): read only when unambiguous
    re.compile(r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}),? " + _CLOCK + r"(?: (?P<ampm>[AP]M))?(?P<slash>)"),
    # klog "E0314 09:04:48.123456" (no year)
    re.compile(r"^[IWEF](?P<m>\d{2})(?P<d>\d{2}) " + _CLOCK),
    # RFC 3164 syslog "Mar 14 09:04:48" (no year)
    re.compile(_MONTH + r" +(?P<d>\d{1,2}) " + _CLOCK),
    # HDFS "081109 203615"
    re.compile(r"^(?P<yy>\d{2})(?P<m>\d{2})(?P<d>\d{2}) (?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})\b"),
)
_EPOCH = re.compile(r"^\[?(?P<epoch>1[0-9]{9}(?:\.\d+)?|1[0-9]{12})\b")
_TIME_KEYS = (
    "time",
    "timestamp",
    "ts",
    "@timestamp",
    "@t",
    "t",
    "date",
    "datetime",
    "asctime",
    "eventTime",
    "__REALTIME_TIMESTAMP",
)
_LEVEL_KEYS = (
    "s",
    "PRIORITY",
    "level",
    "lvl",
    "severity",
    "levelname",
    "@l",
    "loglevel",
    "log.level",
    "Level",
    "severityText",
)
_MESSAGE_KEYS = (
    "msg",
    "message",
    "@m",
    "@mt",
    "error",
    "err",
    "exception",
    "reason",
    "cause",
    "event",
    "stack",
    "stacktrace",
    "log",
    "MESSAGE",
    "Message",
    "body",
    "textPayload",
)
_NESTED_LEVEL = ("log", "level")


def _epoch(fields: Mapping[str, str | None], yearless_year: int) -> tuple[float, bool, bool] | None:
    """(epoch seconds, yearless, zoned) from a timestamp match's named groups (UTC unless it names an offset)."""
    yearless = fields.get("y") is None and fields.get("yy") is None
    if fields.get("slash") is not None and not fields.get("ampm"):
        first, second = int(fields.get("m") or 0), int(fields.get("d") or 0)
        if first <= 12 and second <= 12 and first != second:
            return None  # 04/03/2026 is 4 March or 3 April: not a time to judge evidence age by
        if first > 12:
            fields = {**fields, "m": fields.get("d"), "d": fields.get("m")}
    try:
        if fields.get("yy") is not None:
            year = 2000 + int(fields["yy"] or 0)
        elif fields.get("y") is not None:
            year = int(fields["y"] or 0)
        else:
            year = yearless_year
        month = _MONTHS[(fields.get("mon") or "")[:3]] if fields.get("mon") else int(fields.get("m") or 0)
        hour = int(fields.get("H") or 0)
        if fields.get("ampm"):
            hour = hour % 12 + (12 if fields["ampm"] == "PM" else 0)
        parts = (year, month, int(fields.get("d") or 0), hour, int(fields.get("M") or 0), int(fields.get("S") or 0))
        if not (
            1970 <= year <= 2200
            and 1 <= parts[1] <= 12
            and 1 <= parts[2] <= 31
            and hour <= 23
            and parts[4] <= 59
            and parts[5] <= 60
        ):
            return None
        seconds = calendar.timegm((*parts, 0, 0, 0))
    except (KeyError, ValueError, OverflowError):
        return None
    fraction = fields.get("frac")
    moment = float(seconds) + (float("0." + fraction[1:]) if fraction else 0.0)
    zone = fields.get("tz") or ""
    if zone and zone not in ("Z", "UTC", "GMT"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        moment -= sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)
    return moment, yearless, bool(zone)


def find_timestamp(text: str, yearless_year: int = _YEARLESS) -> tuple[float, bool, bool] | None:
    """The first timestamp near the start of a line, in the formats real logs use; (epoch, yearless, zoned)."""
    head = text[:_HEAD_CHARS]
    epoch = _EPOCH.match(head)
    if epoch:
        value = float(epoch["epoch"])
        return (value / 1000 if value > 1e11 else value), False, True
    for pattern in _STAMPS:
        match = pattern.search(head)
        if match:
            found = _epoch(match.groupdict(), yearless_year)
            if found is not None:
                return found
    return None


def _json_scalar(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value) if value is not None else ""


_JSON_LEVELS = {10: Level.DEBUG, 20: Level.DEBUG, 30: Level.INFO, 40: Level.WARNING, 50: Level.ERROR, 60: Level.ERROR}


def _level_word(word: str) -> Level:
    """A level written as a word ('warn', 'E', 'Error', 'crit') or a syslog/pino number."""
    token = word.strip().strip("[]<>:").lower()
    if token.isdigit():
        number = int(token)
        if number in _JSON_LEVELS:
            return _JSON_LEVELS[number]
        return (
            Level.ERROR
            if number <= 3
            else Level.WARNING
            if number == 4
            else Level.INFO
            if number <= 7
            else (Level.UNSET)
        )
    return _WORD_LEVELS.get(token, Level.UNSET)


_WORD_LEVELS: dict[str, Level] = {
    **dict.fromkeys(
        [
            "error",
            "err",
            "eror",
            "fatal",
            "crit",
            "critical",
            "severe",
            "emerg",
            "emergency",
            "alert",
            "panic",
            "fail",
            "failure",
            "e",
            "f",
        ],
        Level.ERROR,
    ),
    **dict.fromkeys(["warn", "warning", "wrn", "w"], Level.WARNING),
    **dict.fromkeys(
        ["info", "inf", "information", "informational", "notice", "note", "log", "i", "system"], Level.INFO
    ),
    **dict.fromkeys(["debug", "dbg", "trace", "verbose", "fine", "finer", "finest", "d", "t"], Level.DEBUG),
}


_OUTCOME_KEY = re.compile(
    r"(?i)status|code|error|err\b|reason|exception|fault|state|result|exit|heap|memory|rss|gc|goroutine|thread"
    r"|cpu|blocked|lag|outcome|fail|cause"
)
_USER_FIELD = re.compile(r"(?i)path|url|uri|query|agent|referr?er|body|header|host|addr|ip\b|name")


def _outcome(key: str, value: object) -> str:
    """One outcome field as text: an HTTP status as status=NNN, other outcome fields as key=value."""
    if _USER_FIELD.search(key):
        return ""
    if isinstance(value, int) and 100 <= value <= 599 and re.search(r"(?i)status|code", key):
        return f"status={value}"
    if isinstance(value, int | float) and not re.search(r"(?i)status|code|state", key):
        return ""  # a count ("failed": 4 of 90,411 sent) or a figure is not an outcome
    text = _json_scalar(value)
    return f"{key}={text}" if text and len(text) <= 300 else ""


def _parse_json(text: str) -> tuple[Level, str, str] | None:
    """(level, message, time text) of a JSON object line; None when the line is not one."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    level = Level.UNSET
    for key in _LEVEL_KEYS:
        value = document.get(key)
        if isinstance(value, dict):
            value = value.get("level")
        if key == "s" and not (isinstance(value, str) and value[:1] in "FEWID" and len(value) <= 2):
            continue  # MongoDB's one-letter severity; any other "s" field is not a level
        if isinstance(value, str | int) and not isinstance(value, bool):
            level = _level_word(str(value))
            if level:
                break
    nested = document.get(_NESTED_LEVEL[0])
    if not level and isinstance(nested, dict):
        level = _level_word(str(nested.get(_NESTED_LEVEL[1], "")))
    message = " ".join(
        _json_scalar(document[key])
        for key in _MESSAGE_KEYS
        if key in document and not isinstance(document[key], dict | list)
    )
    # fields that state an outcome are evidence too, wherever the logger put them (Traefik's DownstreamStatus,
    # an "errorMessage", a "state"); request paths, agents and bodies are not
    fields = [(key, value) for key, value in document.items() if key not in _MESSAGE_KEYS or isinstance(value, dict)]
    # two levels of nesting: MongoDB's "attr", ECS's "error", "event" and "http.response" objects
    for _depth in range(2):
        fields += [
            (inner, value)
            for _, nested in fields
            if isinstance(nested, dict)
            for inner, value in nested.items()
            if not any(inner == seen for seen, _ in fields)
        ]
    extra = [
        _outcome(key, value)
        for key, value in fields
        if not isinstance(value, dict | list | bool) and _OUTCOME_KEY.search(key)
    ]
    message = " ".join([message, *filter(None, extra)]).strip()
    stamp = next((_json_scalar(document[key]) for key in _TIME_KEYS if key in document), "")
    return level, message, stamp


# key=value pairs: logfmt and structured text. Values of message keys are kept, user content dropped.
_PAIR = re.compile(r"(?<![\w.])(?P<key>[A-Za-z_][\w.@-]{0,40})=(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|\S*)")
_KEEP_KEYS = frozenset(
    {
        "msg",
        "message",
        "error",
        "err",
        "exception",
        "reason",
        "cause",
        "event",
        "status",
        "state",
        "level",
        "lvl",
        "severity",
        "result",
        "code",
        "errno",
        "signal",
        "component",
        "caller",
        "logger",
        "module",
        "unit",
        "service",
        "container",
        "pod",
        "node",
        "host",
        "subsys",
        "error.message",
        "error.type",
        "exit_code",
        "exitcode",
        "rc",
    }
)
_USER_KEYS = re.compile(
    r"\b(?:query|q|search|term|input|prompt|user[_-]?agent|ua|referr?er|summary|text|content|description)"
    r"\s*[:=]\s*"
    r"(?:\"[^\"]*\"|'[^']*'|\S+(?: (?![\w.-]+[:=])\S+)*)"
    # free text written by people (a mail subject, a ticket title) runs to the end of the line when not quoted
    r"|\b(?:subject|title|comment|body|payload)\s*[:=]\s*"
    r"(?:\"[^\"]*\"|'[^']*'|[^\n]*)",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\b(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|CONNECT|TRACE) (?:https?://)?/?\S*"
    r"(?: HTTP/[\d.]+)?"
)
_URL = re.compile(r"\b(?:https?|wss?)://\S+|(?<![\w/])/[\w./%~-]*\?\S*")
# Quoted text with a space in it is somebody's words (a search, a subject, a payload); a quoted single token is
# an identifier ('oom-kill', 'DATABASE_URL') and stays.
_QUOTED = re.compile(
    r"\"(?:[^\"\\\n]|\\.){0,400}?\s(?:[^\"\\\n]|\\.){0,400}\""
    r"|(?<![\w])'[^'\n]{0,400}?\s[^'\n]{0,400}'(?![\w])|“[^”\n]{0,400}”"
)
_LEVEL_TOKEN = re.compile(
    r"(?:^|[\s\[(|:/])(?P<word>ERROR|ERR|FATAL|CRITICAL|CRIT|SEVERE|EMERG|ALERT|PANIC|WARNING|WARN|WRN|INFO|INF"
    r"|NOTICE|DEBUG|DBG|TRACE|Error|Warning|Information|Critical|Verbose|Notice|Fatal|Panic)"
    r"(?=[\s\]):|/,]|$)"
)
_BRACKET_LEVEL = re.compile(
    r"\[(?:[\w.-]+:)?(?P<word>error|err|crit|alert|emerg|warn|warning|notice|info|debug|trace)\s*\]", re.IGNORECASE
)
_PREFIX_LEVEL = re.compile(r"^(?:<(?P<pri>\d{1,3})>|(?P<word>fail|crit|warn|info|dbug|trce):\s)")
_PG_LEVEL = re.compile(r"\b(?P<word>ERROR|FATAL|PANIC|WARNING|LOG|NOTICE|DETAIL|HINT|STATEMENT):\s")
_REDIS_LEVEL = re.compile(r"^\d+:[XCSM] \d{1,2} \w{3} \d{4} [\d:.]+ (?P<mark>[.\-*#]) ")
_KLOG = re.compile(r"^(?P<word>[IWEF])\d{4} \d{2}:\d{2}:\d{2}")
_KLOG_MESSAGE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] \"(?P<msg>(?:[^\"\\]|\\.)*)\"")
_CELERY = re.compile(r": (?P<word>DEBUG|INFO|WARNING|ERROR|CRITICAL)/")
_REDIS_MARKS = {"#": Level.WARNING, "*": Level.INFO, "-": Level.DEBUG, ".": Level.DEBUG}
_PG_WORDS = {"DETAIL": Level.UNSET, "HINT": Level.UNSET, "STATEMENT": Level.UNSET, "LOG": Level.INFO}


def _text_level(text: str) -> Level:
    """The level a plain-text line carries, in the styles of the common servers and frameworks."""
    prefix = _PREFIX_LEVEL.match(text)
    if prefix:
        if prefix["pri"]:
            return _level_word(str(int(prefix["pri"]) % 8))
        return {"fail": Level.ERROR, "crit": Level.ERROR, "warn": Level.WARNING, "info": Level.INFO}.get(
            prefix["word"], Level.DEBUG
        )
    redis = _REDIS_LEVEL.match(text)
    if redis:
        return _REDIS_MARKS[redis["mark"]]
    klog = _KLOG.match(text)
    if klog:
        return _level_word(klog["word"])
    head = text[:_HEAD_CHARS]
    for pattern in (_CELERY, _BRACKET_LEVEL, _LEVEL_TOKEN):
        match = pattern.search(head)
        if match:
            return _level_word(match["word"])
    postgres = _PG_LEVEL.search(head)
    if postgres:
        word = postgres["word"]
        return _PG_WORDS.get(word, _level_word(word))
    pairs = dict((match["key"].lower(), match["value"].strip("\"'")) for match in _PAIR.finditer(head))
    for key in ("level", "lvl", "severity"):
        if key in pairs:
            return _level_word(pairs[key])
    return Level.UNSET


_ACCESS_STATUS = re.compile(r"\"(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|CONNECT|TRACE) [^\"]*\" (?P<status>\d{3})\b")


def _strip_user_parts(text: str) -> str:
    """The message part of a plain line: request lines, URLs with query strings, user-content fields and quoted
    text removed (message-carrying key=value fields such as err="..." are kept, unquoted)."""
    text = _USER_KEYS.sub(" ", text)
    status = _ACCESS_STATUS.search(text)
    if status:  # an access-log line: its status is the outcome, its request line is somebody else's words
        text = f"{text} status={status['status']}"
    text = _REQUEST.sub(" ", text)
    text = _URL.sub(" ", text)

    def pair(match: re.Match[str]) -> str:
        key = match["key"].lower()
        value = match["value"]
        if key in _KEEP_KEYS or _OUTCOME_KEY.search(key) and not _USER_FIELD.search(key):
            return f"{match['key']}={value.strip(chr(34) + chr(39))}"
        return " " if value[:1] in ('"', "'") else match.group(0)

    text = _PAIR.sub(pair, text)
    return _QUOTED.sub(" ", text)


def parse_line(line: str, yearless_year: int = _YEARLESS) -> ParsedLine:
    """Read one line: timestamp, level and message part. Never raises on any string."""
    text = line[:MAX_LINE_CHARS]
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        parsed = _parse_json(stripped)
        if parsed is not None:
            level, message, stamp = parsed
            found: tuple[float, bool, bool] | None = None
            if stamp.isdigit() and len(stamp) == 16:
                stamp = f"{int(stamp) / 1e6:.6f}"  # journald's __REALTIME_TIMESTAMP, in microseconds
            if stamp:
                found = (
                    (float(stamp) / (1000 if float(stamp) > 1e11 else 1), False, True)
                    if _is_number(stamp)
                    else (find_timestamp(stamp, yearless_year))
                )
            inner = parse_line(message, yearless_year) if message and message != stripped else None
            if inner is not None:
                level = level or inner.level
                message = inner.message
                if found is None and inner.timestamp is not None:
                    found = (inner.timestamp, inner.yearless, inner.zoned)
            return ParsedLine(
                line,
                found[0] if found else None,
                bool(found and found[1]),
                level,
                _QUOTED.sub(" ", _REQUEST.sub(" ", _URL.sub(" ", message))),
                bool(found and found[2]),
            )
    found = find_timestamp(text, yearless_year)
    structured = _KLOG_MESSAGE.match(text)
    if structured:
        # klog structured logging quotes the message itself: `E0314 09:04:48.123 1 pod.go:12] "Error syncing pod"`
        text = text[: structured.start("msg") - 1] + structured["msg"] + text[structured.end() :]
    return ParsedLine(
        line,
        found[0] if found else None,
        bool(found and found[1]),
        _text_level(text),
        _strip_user_parts(text),
        bool(found and found[2]),
    )


def _is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return 1e9 <= value < 1e14
