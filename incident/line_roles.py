"""What a log line that no fault rule claims is: abnormal, a symptom, a recovery, a start, noise (data and tests)."""

from __future__ import annotations

import re
from enum import StrEnum

from it_support_agent.incident.log_parse import Level, ParsedLine

ROLE_CHARS = 400
"""How much of a message the explaining roles read."""


class Role(StrEnum):
    """The part a line without a fault rule plays in the accounting."""

    ABNORMAL = "abnormal"  # error/warning level or failure wording: must be explained, or it blocks a restart
    MEMORY_SYMPTOM = "memory_symptom"  # GC pauses, heap and cache growth
    SLOW_SYMPTOM = "slow_symptom"  # slow requests, latency, queues growing behind a slow process
    THREAD_SYMPTOM = "thread_symptom"  # busy or blocked threads, loops, failing health checks
    CONSEQUENCE = "consequence"  # what a local fault does to the service itself: its timeouts, 5xx, failed checks
    AFTERMATH = "aftermath"  # how a process dies of a local fault (exit by signal, core dump, the unit failing)
    STALL = "stall"  # progress stopped: a symptom that also corroborates a hang wording
    RECOVERY = "recovery"  # something came back: earlier faults may be over
    STARTUP = "startup"  # the process (re)started
    NOISE = "noise"  # a client hanging up, a zero count of errors, a check reporting OK
    PLAIN = "plain"  # ordinary operation


# Failure wording at any level. A line that carries it and no rule explains counts against a restart.
FAILURE_WORDS = re.compile(
    r"\b(?:status=5\d\d|errors?|err|fail(?:s|ed|ing|ures?)?|fatal|exceptions?|traceback|panic(?:ked|s)?|abort(?:ed|ing|s)?"
    r"|crash(?:ed|es|ing)?|refus(?:ed|ing)|denied|unreachable|unavailable|timed ?out|times out"
    r"|timeouts? (?:expired|exceeded|after|while|waiting|occurred|on|when|error)|\d+ timeouts|corrupt\w*"
    r"|invalid|cannot|can't|couldn't|could not|unable|lost|dropp(?:ed|ing)|drops?|reject(?:ed|ing|s)?"
    r"|overflow\w*|exhaust\w*|exceed(?:ed|s|ing)?|critical|alarms?|degraded|unhealthy|killed|kill(?:ing)?"
    r"|segfault|segmentation|violations?|broken|misconfigur\w*|back-?off|retr(?:y|ying|ies)|throttl\w*"
    r"|flood\w*|not responding|unresponsive|stall(?:ed|ing|s)?|stuck|hung|hang(?:ing|s)?|deadlock\w*|leak\w*"
    r"|oom\w*|shortage|insufficient|overload\w*|saturat\w*|congest\w*|unexpected(?:ly)?|terminat(?:ed|ing)"
    r"|mismatch\w*|offline|(?<!shutting )(?<!scaling )(?<!scale )(?<!slow )down|(?:is|are) full|lag(?:ging)?"
    r"|slow(?:er|ness)?"
    r"|no (?:reply|response|answer)|missing|exit(?:ed)? (?:code|status) [1-9]|non-?zero exit"
    r"|sig(?:kill|segv|abrt|term|bus)|out of \w+|too many|not (?:found|available|ready|running|healthy)"
    r"|split[- ]brain|quorum|unassigned|under-?replicated|isr shr\w*|shrinking isr|to \[?red\]?|fenc(?:ed|ing)"
    r"|leader (?:election|changed|lost)|lost leader|elected leader|failover|fail(?:ing)? over|rebalanc\w*"
    r"|network partition|partitioned|evict(?:ed|ing|ion)|read-?only|remount\w*|fsync|i/o|link (?:is )?down"
    r"|carrier|retransmit\w*|conntrack|dropping packets?|paused|blocked|backpressure|overcommit\w*"
    r"|rollback|rolling back|resync\w*|full sync|replica sync|initial sync|loading (?:the )?(?:db|dataset)"
    r"|recovering|to \[?yellow\]?|steal|(?:has )?not responded|reconnecting|call trace"
    # cluster and data-store activity: a restart would interrupt it, and the figure may well be its doing
    r"|shards?|replicas?|partitions?|leader|follower|peers?|cluster|quorum|raft|gossip|membership|relocat\w*"
    r"|compact(?:ion|ing)|reindex\w*|backfill\w*|recovery (?:from|of)|starting recovery|catching up"
    r"|node (?:left|joined|removed|added)|removed \{"
    r"|suspend(?:ed)?|inconsisten\w*|skew|step(?:ped)? (?:the )?clock)\b|\w(?:exception|error)\b"
)
# Counts of nothing are not failures: "0 errors", "errors=0", "no failures", "without error".
ZERO_COUNT = re.compile(
    r"\bno_?error\b"
    r"|\b(?:terminated|exited|finished|completed|ended|stopped) (?:with success|successfully|normally|cleanly)\b"
    r"|\bexit(?:ed with)? (?:code|status)[ =:]?0\b"
    r"|\b(?:0|no|zero|without(?: any)?)\s+(?:[\w-]+\s+){0,2}(?:errors?|failures?|warnings?|exceptions?|timeouts?"
    r"|retries|drops?|dropped|rejections?|faults?|issues?|problems?|events?|connections?|kills?|restarts?|alerts?)\b"
    r"|\b(?:errors?|failures?|failed|warnings?|exceptions?|timeouts?|retries|dropped|drops?|rejected|lost"
    r"|skipped|killed)\s*[=:]\s*0+(?:\.0+)?%?(?![\d.])"
)

_RECOVERY = re.compile(
    r"\b(?:recovered|recovery (?:complete|completed|finished|succeeded)|no longer (?:exceeded|\w+ing|over|above)"
    r"|re-?established|reconnected|restored|back (?:online|to normal|up|in service)|(?<![-\w])resolved(?! \[)(?!\[)"
    r"|cleared|is healthy"
    r"|became healthy|healthy again|now healthy|circuit ?breaker (?:is )?(?:closed|reset)|alarm (?:cleared|off)"
    r"|succeeded (?:after|on (?:attempt|retry))|connection (?:re)?established|resum(?:ed|ing) (?:normal )?"
    r"(?:processing|consumption|operation)|caught up|in sync|is up|failover complete(?:d)?"
    r"|expanding isr|isr (?:expanded|updated to)|back in sync|rejoined|started streaming wal"
    r"|(?:re)?sync(?:hroni[sz]ation)? (?:completed|complete|finished|done)"
    r"|(?:obtained|renewed|reconnected|connected|synced|completed|restored) successfully"
    r"|successfully (?:obtained|renewed|reconnected|connected|synced|restored)"
    r"|(?:transition(?:ed)?|changed) (?:from \w+ )?to running)\b"
)
_NOT_RECOVERED = re.compile(
    r"\b(?:not|never|fail(?:ed|s)? to|unable to|could not|cannot|can't|couldn't) (?:be )?(?:recover|restor"
    r"|re-?establish|reconnect|resolv)|\bunresolved\b|\bnot (?:yet )?(?:recovered|restored|cleared)\b"
)
_STARTUP = re.compile(
    r"\b(?:started \S+(?: \S+)? in \d+(?:\.\d+)? ?(?:s|ms|sec|seconds)\b|ready to accept connections|server started"
    r"|spawned: |entered (?:the )?running state|server startup in|listening(?: on)?\b|systemd\[\d+\]: started\b"
    r"|application (?:started|ready)"
    r"|startup complete|\b(?:server|service|application|daemon|instance|container|pod)\b (?:\S+ )?"
    r"start(?:ing|ed)\b|\bstarting\b[^\n]{0,60}?\b(?:version\b|v\d+\.\d+)|\bstarted container\b"
    r"|\bstarting signal loop\b"
    r"|service started|started (?:the )?(?:server|service|application|worker|process)|is ready)"
)
# Work starting inside a running process is not the process starting.
_WORK_STARTED = re.compile(
    r"\b(?:job|task|batch|backup|compaction|scan|export|import|migration|snapshot|run|sync|checkpoint|gc|vacuum)s?"
    r"\b[^\n]{0,30}?\bstart(?:ed|ing)\b"
)
# A client hanging up on an inbound request: the server is fine, the caller left.
_CLIENT_GONE = re.compile(
    r"\bclient (?:prematurely )?closed (?:the )?(?:keepalive )?connection\b|\bclientabortexception\b"
    r"|\bbroken pipe\b[^\n]{0,80}?\b(?:client|response|sending|writing|write)\b"
    r"|\b(?:client|response|sending|writing|write)\b[^\n]{0,80}?\bbroken pipe\b"
    r"|\bconnection reset by peer\b[^\n]{0,80}?\b(?:client|reading (?:client )?request|request)\b"
    r"|\bclient (?:disconnected|went away|hung up|aborted)\b|\brequest aborted\b|\bepipe\b[^\n]{0,40}?\bclient\b"
    r"|\b(?:client|response)\b[^\n]{0,200}?\b(?:connection reset by peer|broken pipe)\b"
)
# A monitoring check reporting OK names the failure it looks for; Apache per-client request errors (403, 404).
_MONITOR_OK = re.compile(
    r"\b(?:check|probe) \S+:? (?:ok|passed|healthy)\b|\bservice (?:alert|notification): [^;\n]*;[^;\n]*;(?:\w+;)?ok;"
    r"|\bhost (?:alert|notification): [^;\n]*;up;|\bexternal command: schedule_\w*downtime\b"
)
_BENIGN = re.compile(
    r"\[client [0-9a-f.:]+\][^\n]{0,80}?\b(?:file does not exist|directory index forbidden|client denied by server"
    r"|script not found|invalid uri|request failed: error reading the headers|ah01630|ah01276|ah00128)"
)
_UPSTREAM_SIDE = re.compile(r"\bupstream\b|\bremote server\b|\bbackend\b|\bproxy\b")
_AFTERMATH = re.compile(
    r"\bmain process exited\b|\bfailed with result '(?:oom-kill|signal|core-dump|exit-code|watchdog|timeout)'"
    r"|\bcode=(?:killed|dumped)\b|\bstatus=(?:9/kill|6/abrt|11/segv|137)\b|\bkilled by signal\b|\bsignal 9\b"
    r"|\bsigkill\b|\bcore[- ]dump(?:ed)?\b|\babort\(\)|\bthrew exception\b|\bfaulting application\b"
    r"|\bterminated due to an unhandled exception\b|^\s*(?:status|state|reason|last state): +(?:failed|terminated"
    r"|error)\b|\bexit(?:ed with)? code:? 137\b|\bworker ?lost\w*|\bexited prematurely\b|\b(?:worker|child|process)"
    r"\b[^\n]{0,60}?\b(?:died|exited)\b|\bunhandled exception\b|\bfatal error\b|\bpanic\.go\b|\bgoroutine \d+"
    r"|^\s*(?:at |\d+: 0x|file \"|caused by:|\.\.\. \d+ more)|\bexited: [^\n]{0,80}?\bnot expected\b"
    r"|\bstate 'stop-\w+' timed out\b|\bwatchdog timeout \(limit|^traceback \(most recent call last\)"
    r"|\bkilling process \d+ \([^)]{1,64}\) with signal sig(?:abrt|kill|term)\b"
)
_STALL = re.compile(
    r"\bno progress\b|\bno (?:\w+ ){0,2}(?:completed|processed|finished|acknowledged|committed)\b"
    r"|\b0 (?:\w+ )?(?:processed|completed|consumed|committed)\b|\bthroughput(?: is|=|:)? ?0\b"
    r"|\bstuck at\b|\bnot advanced\b|\bno (?:new )?(?:commits?|offsets?) (?:since|for|in)\b"
    r"|\blag (?:growing|increasing|keeps growing|rising)\b|\bstill running after\b|\bhas not (?:completed|ticked"
    r"|progressed|advanced|run)\b|\bnot ticked\b|\blast heartbeat (?:was )?received \d+ (?:minutes?|hours?)\b"
    r"|\b(?:synced|processed|completed|consumed|handled|sent|indexed|rendered|allocated|shipped|written) 0\b"
    r"|\bno \w+ (?:allocated|shipped|sent|written|indexed|rendered|produced|delivered|handled|synced) (?:in|for)\b"
    r"|\b(?:completed|processed|consumed|handled)[\w.]*[=:] ?0(?![\d.])"
)
# What a local fault looks like from inside the process, by family; a family is explained only by the findings
# that cause it (a hot memory figure explains GC pauses, not a failing health check).
_MEMORY_SYMPTOM = re.compile(
    r"\b(?:full |young |mixed )?gc\b|\bgarbage collect\w*|\bold gen\w*|\bheap\b|\brss\b"
    r"|\bmemory (?:usage|used|growth|grows|growing|leak\w*|pressure|footprint|use|keeps growing)\b"
    r"|\bmark-compact\b|\bscavenge\b|\ballocation failure\b|\bcache\b[^\n]{0,40}?\b(?:entries|size|eviction|grow\w*)"
    r"|\bno eviction\b|\bevictions?=0\b|\bpause(?:d)? \d|\bgoroutine (?:count|leak)\w*|\bwaiting (?:on|for) memory\b"
)
_SLOW_SYMPTOM = re.compile(
    r"\btook \d[\d,.]*\s?(?:ms|s|sec|secs|seconds|minutes?)\b|\bexceed(?:s|ed)? (?:the )?(?:\w+ )?threshold\b"
    r"|\bexceeded \d[\d,.]*\s?m?s\b|\bslow (?:request|response|call|render|handler|endpoint)s?\b"
    r"|\b(?:request|response|handler|endpoint|call)s? (?:is |was |are )?slow\b"
    r"|\b(?:request|response) (?:processing )?time\b|\blatency\b|\bresponse times?\b|\bp9[59]\b"
    r"|\b(?:request|response|handler|render|task|job)s?\s+(?:timed out|timeout)\b(?![^\n]{0,30}\b(?:to|from|upstream"
    r"|backend|calling)\b)|\bqueue (?:depth|length|size)\b|\bsoft limit\b|\bduration_?ms[=:] ?\d{4,}|\bp99[=:]"
    r"|\b5xx[=:]|\bevent loop (?:delay|lag|utili[sz]ation)\b|\b(?:consumer )?lag\b"
)
_THREAD_SYMPTOM = re.compile(
    r"\bthreads? (?:runnable|waiting|blocked|timed_waiting|busy|in runnable)\b|\bthread dump\b|\bcpu\b"
    r"|\bload average\b|\bwaiting to lock\b|\bstack trace\b|\bworkers? (?:busy|saturated|at \d+%)|\bgoroutines?\b"
    r"|\brunnable\b|\bwithout returning\b|\bwaited \d[\d,.]*\s?m?s\b"
    r"|\bheld by\b(?![^\n]{0,80}\b(?:pid|host|client|node|server|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}))"
    r"|\b(?:waiting|blocked|timed_waiting) (?:at|on|in|for)\b|\block (?:wait|contention)\b"
    r"|\bdid not (?:terminate|finish|complete|return)\b|\b(?:infinite|runaway|busy|tight|spin) ?loop\b|\bspinning\b"
    r"|\b(?:health ?check|readiness probe|liveness probe)\b[^\n]{0,60}?\b(?:unhealthy|failed|failing|critical"
    r"|timed out|timeout)\b|\bcheck is now critical\b|^timeout \(\d+:\d\d:\d\d\)!|\bprobe failed\b"
    r"|\btask was destroyed but it is pending\b"
)


_OUTBOUND = re.compile(
    r"\b(?:peer|upstream|backend|downstream|remote|target|endpoint|host)\s*[=:]|\bupstream\b|\bbackend\b"
    r"|\b(?:to|from|calling|call to|request to|connect(?:ing)? to)\s+(?:https?://)?[a-z][\w.-]*[a-z0-9](?::\d+)?\b"
    r"[^\n]{0,60}?\b(?:took|timed out|timeout|latency|slow|giving up|failed)"
    r"|\b(?:db|database|pool|hikari\w*|redis|kafka|grpc|rpc|http client)\b[^\n]{0,40}?\b(?:timed out|timeout"
    r"|latency|took)\b"
)
_SYMPTOMS = (
    (_MEMORY_SYMPTOM, Role.MEMORY_SYMPTOM),
    (_THREAD_SYMPTOM, Role.THREAD_SYMPTOM),
    (_SLOW_SYMPTOM, Role.SLOW_SYMPTOM),
)


_METRIC_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:[_.][a-z0-9]+)+(?=\s*[:=]\s*[-+]?\d)")


def split_metric_names(text: str) -> str:
    """Metric names read as words ("upstream_rq_pending_overflow: 48213" -> "upstream rq pending overflow"); other
    identifiers (a task named send_payment_failed_notice) stay whole."""
    return _METRIC_NAME.sub(lambda match: match.group(0).replace("_", " ").replace(".", " "), text)


def is_outbound(text: str) -> bool:
    """The line is about a call to someone else (an upstream, a database, a named host): their symptom, not the
    process's own (lower-case message part)."""
    return bool(_OUTBOUND.search(text))


def is_client_gone(text: str) -> bool:
    """A client hanging up on an inbound request, or a monitor reporting a check OK (lower-case message part):
    the failure words in such lines name what went away or what is being checked, not a fault. A line that also
    names an upstream or a remote server is about that side, not the client."""
    if _MONITOR_OK.search(text):
        return True
    return bool(_CLIENT_GONE.search(text)) and not _UPSTREAM_SIDE.search(text)


_PLAIN_RECOVERY = re.compile(
    r"\b(?:no longer (?:exceeded|above|over)|back to normal|healthy again|recovered from|alarm cleared|circuit ?breaker"
    r" (?:is )?(?:closed|reset))\b"
)


def is_plain_recovery(text: str) -> bool:
    """Recovery wording that outweighs a fault phrase in the same line ("high watermark no longer exceeded")."""
    return bool(_PLAIN_RECOVERY.search(text)) and not _NOT_RECOVERED.search(text)


def is_recovery(text: str) -> bool:
    """Recovery wording that is not negated ("recovered", not "failed to recover")."""
    return bool(_RECOVERY.search(text)) and not _NOT_RECOVERED.search(text)


_SHUTDOWN = re.compile(
    r"\b(?:entered the stopped state|graceful(?:ly)? shut(?:ting)? ?down|shutdown complete|shutting down"
    r"|commencing graceful shutdown|received sig(?:term|int)|stopping [\w.@-]+\.{0,3}$|stopped [\w.@-]+\.$)",
    re.IGNORECASE | re.MULTILINE,
)


def is_shutdown(text: str) -> bool:
    """The process being stopped (a restart or a deploy under way)."""
    return bool(_SHUTDOWN.search(text))


def is_stall(text: str) -> bool:
    """Progress stopped (lower-case message part)."""
    return bool(_STALL.search(text))


def shows_symptom(text: str) -> bool:
    """The line describes the process itself suffering (heap or RSS growth, GC, slow handlers, busy threads, stalled
    progress) at any level, and is not about a call to someone else (lower-case message part)."""
    head = split_metric_names(text[:ROLE_CHARS])
    if _OUTBOUND.search(head):
        return False
    return bool(_STALL.search(head)) or any(pattern.search(head) for pattern, _ in _SYMPTOMS)


def line_role(line: ParsedLine) -> Role:
    """The role of a line no fault rule claims, from its level and its message part."""
    full = line.message.lower()
    # The roles that explain a line or mark it over are read from its head only: a hostile 2,000-character line
    # costs no more than a normal one, and a role missed on a long tail leaves the line abnormal (the safe side).
    text = split_metric_names(full[:ROLE_CHARS])
    if is_client_gone(text) or _BENIGN.search(text):
        return Role.NOISE
    if is_recovery(text):
        return Role.RECOVERY
    if _STARTUP.search(full) and not _WORK_STARTED.search(full) and line.level < Level.WARNING:
        return Role.STARTUP
    if _STALL.search(text):
        return Role.STALL
    failure = bool(FAILURE_WORDS.search(split_metric_names(full)))
    if _AFTERMATH.search(text) or _AFTERMATH.search(line.raw[:ROLE_CHARS].lower()):  # quotes intact: 'oom-kill'
        return Role.AFTERMATH
    abnormal = failure or line.level >= Level.WARNING
    if not _OUTBOUND.search(text):  # slowness of a call to someone else is their symptom, not the process's
        for pattern, role in _SYMPTOMS:
            if pattern.search(text):
                return role if abnormal else Role.PLAIN
    if line.level == Level.DEBUG:
        return Role.PLAIN
    if line.level >= Level.WARNING or failure:
        return Role.ABNORMAL
    return Role.PLAIN
