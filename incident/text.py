"""Untrusted text made safe to keep, quote or send: secrets masked, terminal escapes and control bytes removed, cut.

Every log line, alert field, model answer and error message the agent writes anywhere passes through here: the
evidence it quotes (`clean_line`), the lines it hands the model (`redact_lines`), and every record it writes or
sends (`redact_value`, applied to tickets, audit events, the spool, sinks and the CLI's output).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
QUOTE_CHARS = 300

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Secrets by shape: (words one of which the lower-cased text must hold, pattern, replacement). Each pattern keeps
# the part that says what was there and masks the value itself; the words keep clean lines cheap.
_SECRET_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # scheme://user:password@host
    (("@",), re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@\"']*:)[^\s@/\"']+(@)", re.IGNORECASE), r"\1" + MASK + r"\2"),
    # Authorization: Bearer|Basic|Token <value>, and a bare "Bearer <token>"
    (
        ("bearer", "basic", "token", "digest"),
        re.compile(r"\b(Bearer|Basic|Token|Digest)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE),
        r"\1 " + MASK,
    ),
    # key=value, key: value, "key": "value" for names that hold secrets
    (
        ("pass", "pwd", "secret", "token", "key", "credential", "auth", "cookie"),
        re.compile(
            r"(?P<key>(?:password|passwd|pwd|secret|token(?!s)|api[_\-]?key|access[_\-]?key"
            r"|private[_\-]?key|credentials?|authorization\b|auth\b|auth[_\-]?(?:token|key|header)"
            r"|cookie)[\w.\-]{0,40}[\"']?\s*[=:]\s*)(?P<quote>[\"']?)(?P<value>[^\s\"',;&}]{3,})",
            re.IGNORECASE,
        ),
        r"\g<key>\g<quote>" + MASK,
    ),
    # Well-known token formats
    (("sk-",), re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"), MASK),
    (("gh",), re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MASK),
    (("xox",), re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), MASK),
    (("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), MASK),
    (("hooks.slack",), re.compile(r"\bhooks\.slack\.com/services/[A-Za-z0-9/]+"), "hooks.slack.com/services/" + MASK),
    (
        ("private key",),
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
        MASK,
    ),
)
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|WEBHOOK|ROUTING", re.IGNORECASE)
_MIN_KNOWN_SECRET = 6


def known_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of the environment's secret-holding variables (API keys, tokens, passwords, webhook URLs), longest
    first, so an echo of one (say, a model endpoint quoting the Authorization header it got) is masked verbatim."""
    environ = os.environ if environ is None else environ
    values = {value.strip() for name, value in environ.items() if _SECRET_NAME.search(name) and value.strip()}
    return tuple(sorted((value for value in values if len(value) >= _MIN_KNOWN_SECRET), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with secrets masked: the given known values, then anything shaped like a credential."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    lower = text.lower()
    for words, pattern, replacement in _SECRET_PATTERNS:
        if any(word in lower for word in words):
            text = pattern.sub(replacement, text)
    return text


def redact_lines(lines: Iterable[str]) -> list[str]:
    """Log lines with secrets masked (the environment's secrets read once for the batch)."""
    secrets = known_secrets()
    return [redact(line, secrets) for line in lines]


def redact_value(value: Any, secrets: tuple[str, ...] | None = None) -> Any:
    """A JSON-like value with every string in it (keys included) redacted; other values as they are."""
    secrets = known_secrets() if secrets is None else secrets
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {redact_value(key, secrets): redact_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item, secrets) for item in value]
    return value


def strip_controls(text: str, replacement: str = "\ufffd") -> str:
    """Terminal escape sequences removed and other control bytes replaced (tabs kept, newlines replaced)."""
    if "\x1b" in text:
        text = _ANSI_ESCAPE.sub("", text)
    return _CONTROL.sub(replacement, text)


def clean_line(line: str, limit: int = QUOTE_CHARS, secrets: Iterable[str] = ()) -> str:
    """One untrusted line made safe to quote: stripped, secrets masked, escapes removed, cut with an ellipsis.

    Credentials are masked by shape here; the environment's own secret values are masked by `redact_value` on
    every record written or sent (and here too when the caller passes `known_secrets()`)."""
    text = strip_controls(redact(line.strip(), secrets))
    return text if len(text) <= limit else text[: limit - 1] + "…"
