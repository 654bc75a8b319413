"""The fault categories and the log-line rules of the evidence classifier (data, kept apart from the engine)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    """What a piece of evidence points to."""

    CPU_SATURATION = "cpu_saturation"
    MEMORY_PRESSURE = "memory_pressure"
    OOM_KILL = "oom_kill"
    HUNG_PROCESS = "hung_process"
    DEPENDENCY_FAILURE = "dependency_failure"
    DISK_FULL = "disk_full"
    SECURITY_EVENT = "security_event"
    HARDWARE_FAULT = "hardware_fault"
    CONFIG_ERROR = "config_error"
    LOAD_SURGE = "load_surge"
    RECENT_CHANGE = "recent_change"
    CRASH_LOOP = "crash_loop"
    UNKNOWN = "unknown"
    NO_FAULT = "no_fault"


RECOVERABLE: frozenset[Category] = frozenset(
    {Category.CPU_SATURATION, Category.MEMORY_PRESSURE, Category.OOM_KILL, Category.HUNG_PROCESS}
)
BLOCKING: frozenset[Category] = frozenset(
    {
        Category.DEPENDENCY_FAILURE,
        Category.DISK_FULL,
        Category.SECURITY_EVENT,
        Category.HARDWARE_FAULT,
        Category.CONFIG_ERROR,
        Category.LOAD_SURGE,
        Category.RECENT_CHANGE,
        Category.CRASH_LOOP,
    }
)
BLOCKING_PRIORITY: tuple[Category, ...] = (
    Category.SECURITY_EVENT,
    Category.HARDWARE_FAULT,
    Category.DISK_FULL,
    Category.CONFIG_ERROR,
    Category.CRASH_LOOP,
    Category.RECENT_CHANGE,
    Category.LOAD_SURGE,
    Category.DEPENDENCY_FAILURE,
)
# Context, not a fault: a change or a traffic surge vetoes a restart, but on a healthy server with nothing wrong it
# is ordinary operation (a reload, a busy hour), not a reason for a ticket.
CONTEXT: frozenset[Category] = frozenset({Category.RECENT_CHANGE, Category.LOAD_SURGE})
RECOVERABLE_PRIORITY: tuple[Category, ...] = (
    Category.OOM_KILL,
    Category.HUNG_PROCESS,
    Category.MEMORY_PRESSURE,
    Category.CPU_SATURATION,
)
LINE_PRIORITY: tuple[Category, ...] = BLOCKING_PRIORITY + RECOVERABLE_PRIORITY

# Security rules that only count as a burst (>= SECURITY_BURST lines); one failed login is noise.
BURST_RULES: frozenset[str] = frozenset({"auth_failure", "invalid_user", "break_in_attempt"})
# Hang wordings that count only when corroborated by a hot figure, a stalled-progress line or a firmer hang rule:
# on their own they may as well describe a peer or a passing blip.
WEAK_HANG_RULES: frozenset[str] = frozenset(
    {"heartbeat_missed", "loop_stalled", "scheduler_stalled", "defunct_children", "poll_timeout", "descriptor_leak"}
)
UNRECOGNISED_RULE = "unrecognised_error"
UNEXPLAINED_RULE = "unexplained_abnormal"


@dataclass(frozen=True)
class Rule:
    """One named pattern. It runs only when one of its trigger `words` is a token of the line;
    `unless` vetoes the match when it also occurs in the line."""

    category: Category
    name: str
    words: str
    pattern: str
    unless: str | None = None


# Patterns are lowercase and run on the lowercased line, cut to MAX_LINE_CHARS. Gaps are bounded
# ([^\n]{0,N}) and there are no nested quantifiers, so matching stays linear on hostile input.
RULES: tuple[Rule, ...] = (
    # --- security: bursts of auth failures (BURST_RULES), or one explicit alert ---
    Rule(
        Category.SECURITY_EVENT,
        "auth_failure",
        "failed authentication auth authenticate denied login account eventid",
        r"\bfailed (?:password|none|publickey|keyboard-interactive(?:/pam)?) for\b"
        r"|\bauthentication (?:failure|failed)|\bauth(?:entication)? fail\b"
        r"|\btoo many authentication failures\b|\bmaximum authentication attempts exceeded\b"
        r"|\bno more user authentication methods\b|\bcouldn't authenticate user\b"
        r"|\bpermission denied \((?:publickey|password|keyboard)|\bfailed login\b|\blogin fail(?:ed|ure)\b"
        r"|\baccess denied for user\b|\ban account failed to log ?on\b|\beventid[=: ]*4625\b",
    ),
    Rule(Category.SECURITY_EVENT, "invalid_user", "invalid", r"invalid user \S"),
    Rule(Category.SECURITY_EVENT, "break_in_attempt", "break", r"possible break-in attempt\b"),
    Rule(
        Category.SECURITY_EVENT,
        "intrusion_alert",
        "intrusion malware ransomware rootkit trojan virus webshell threat threats infected unauthorized"
        " unauthorised privilege brute shell xmrig cryptominer coin coinminer suspicious",
        r"\bintrusion (?:detected|attempt|alert)|\b(?:malware|ransomware|rootkit|trojan|virus|webshell)"
        r" (?:detected|found)\b|\bdetected (?:malware|ransomware|a rootkit|a webshell)\b"
        r"|\b[1-9]\d* (?:threats?|infected files?) (?:detected|found)\b|\bunauthori[sz]ed (?:access|root)\b"
        r"|\bprivilege escalation\b|\bbrute[- ]force (?:attack|attempt)|\breverse shell\b"
        r"|\b(?:xmrig|cryptominer|coin ?miner)\b|\bsuspicious (?:process|binary|login|outbound)",
    ),
    Rule(
        Category.SECURITY_EVENT,
        "prompt_injection",
        "ignore disregard forget im_start system assistant tool_call",
        r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier)\s+"
        r"(?:instructions|prompts?|rules)\b|<\|im_start\|>|</?(?:system|assistant|tool_call)>",
    ),
    # --- hardware ---
    Rule(Category.HARDWARE_FAULT, "kernel_fatal", "fatal", r"kernel fatal\b"),
    Rule(Category.HARDWARE_FAULT, "kernel_panic", "panic", r"kernel panic\b"),
    Rule(
        Category.HARDWARE_FAULT,
        "kernel_lockup",
        "lockup stall stalls",
        r"\b(?:soft|hard) lockup\b|\brcu_\w+ (?:self-)?detected stalls?\b|\brcu[^\n]{0,20}? stall\b",
    ),
    # the kernel's hung-task report: a process in uninterruptible sleep, waiting on storage or a network filesystem
    Rule(
        Category.HARDWARE_FAULT,
        "storage_stall",
        "task blocked hung hung_task_timeout_secs",
        r"\btask \S+ blocked for more than \d+ seconds\b|\bhung_task_timeout_secs\b|\bhung task\b"
        r"|\bblocked for more than \d+ seconds\b",
    ),
    Rule(
        Category.HARDWARE_FAULT,
        "machine_check",
        "machine hardware",
        r"\bmachine check (?:exception|events? logged|error)|\[hardware error\]"
        r"|\bhardware (?:error|failure|fault)",
    ),
    Rule(
        Category.HARDWARE_FAULT,
        "memory_error",
        "uncorrectable uncorrected ecc edac",
        r"\buncorrect(?:able|ed) (?:ecc |memory |ddr )?errors?\b|\becc (?:error|failure)s?\b"
        r"|\bedac [^\n]{0,60}?\bue\b",
        unless=r"(?<!un)correct(?:ed|able)\b",
    ),
    Rule(
        Category.HARDWARE_FAULT,
        "disk_io_error",
        "i input medium smart failing_now failing disk emask command",
        r"\bi/o error\b|\binput/output error\b|\bmedium error\b|\bsmart (?:failure|error)|\bfailing_now\b"
        r"|\b(?:drive|disk) (?:is )?failing\b|\bdisk failure\b|\bexception emask\b|\bfailed command: ",
    ),
    Rule(
        Category.HARDWARE_FAULT,
        "raid_degraded",
        "degraded",
        r"\braid\S* (?:array )?(?:\S+ )?(?:is )?degraded|\bdegraded (?:raid|array)\b"
        r"|\bmd\d+:[^\n]{0,60}?degraded",
    ),
    Rule(
        Category.HARDWARE_FAULT,
        "hardware_alarm",
        "temperature thermal overheat overheated overheating fan power psu functional fallen hang link carrier",
        r"\btemperature above threshold\b|\bthermal (?:shutdown|event|trip)|\boverheat\w*"
        r"|\b(?:fan|power supply|psu) (?:failure|failed|fault)\b|\bnot fully functional\b"
        r"|\bfallen off the bus\b|\bhardware unit hang\b|\bnic link is down\b|\bcarrier lost\b",
    ),
    # --- disk full ---
    Rule(
        Category.DISK_FULL,
        "no_space",
        "space enospc diskoutofspaceexception full disk watermark",
        r"\bno space left on device\b|\benospc\b|\bdiskoutofspace|\bout of (?:disk )?space\b"
        r"|\b(?:not enough|insufficient) (?:free )?(?:disk )?space\b"
        r"|\b(?:disk|volume|filesystem|file system|partition)(?: \S+)? (?:is )?full\b"
        r"|\bdisk (?:usage|utili[sz]ation) (?:is )?(?:at |above |over )?(?:9[5-9]|100)(?:\.\d+)?\s?%"
        r"|\bdisk watermark[^\n]{0,40}?(?<!no longer )exceeded\b",
    ),
    Rule(Category.DISK_FULL, "quota_exceeded", "quota edquot", r"\b(?:disk )?quota exceeded\b|\bedquot\b"),
    Rule(
        Category.DISK_FULL,
        "inodes_exhausted",
        "inodes inode",
        r"\bout of inodes\b|\bno (?:free )?inodes\b"
        r"|\binodes? (?:usage )?(?:is |are )?(?:full|exhausted|at 100\s?%)",
    ),
    # --- configuration / bad deploy ---
    Rule(
        Category.CONFIG_ERROR,
        "invalid_config",
        "invalid misconfigured misconfiguration bad parse parsing syntax config configuration settings"
        " directive bind application",
        r"\binvalid (?:config(?:uration)?|setting|value for)\b|\bmisconfigur\w+|\bbad config(?:uration)?\b"
        r"|\b(?:config(?:uration)?|settings|properties|yaml|json|toml|ini)(?: file)?"
        r" (?:parse|parsing|syntax) error"
        r"|\b(?:error|failed|failure) (?:parsing|loading|reading|to (?:parse|load|read)) (?:the )?"
        r"(?:config|configuration|settings)\b"
        r"|\bunknown (?:directive|configuration (?:option|key|property)|config (?:option|key))\b"
        r"|\bfailed to bind propert(?:y|ies)\b|\bapplication failed to start\b",
    ),
    Rule(
        Category.CONFIG_ERROR,
        "config_change",
        "applied change",
        r"\bapplied (?:config(?:uration)? )?change\b"
        r"|\bconfig(?:uration)? (?:change|update) (?:applied|deployed|pushed|rolled out)\b",
    ),
    Rule(
        Category.CONFIG_ERROR,
        "missing_setting",
        "missing environment secret api_key apikey key credential credentials keyerror",
        r"\bmissing (?:required )?(?:env(?:ironment)? var(?:iable)?|config(?:uration)?|secret|setting"
        r"|property)\b|\benvironment variable \S+ (?:is )?(?:not set|missing|undefined|required)"
        r"|\b(?:secret|api[_ ]?key|credentials?) \S*\s?(?:is )?(?:missing|not (?:set|found|provided))\b"
        r"|\bkeyerror: '[a-z][a-z0-9_]*'",
    ),
    Rule(
        Category.CONFIG_ERROR,
        "class_not_found",
        "classnotfoundexception noclassdeffounderror nosuchmethoderror modulenotfounderror importerror"
        " unsatisfiedlinkerror",
        r"\bclassnotfoundexception\b|\bnoclassdeffounderror\b|\bnosuchmethoderror\b|\bmodulenotfounderror\b"
        r"|\bimporterror\b|\bunsatisfiedlinkerror\b",
    ),
    Rule(
        Category.CONFIG_ERROR,
        "version_mismatch",
        "version",
        r"\bversion mismatch\b|\bincompatible (?:schema |protocol |api )?version\b"
        r"|\bunsupported (?:\w+ )?version\b",
    ),
    Rule(
        Category.CONFIG_ERROR,
        "migration_failed",
        "migration migrations",
        r"\bmigration[^\n]{0,40}?\bfail(?:ed|ure)\b|\bfailed to (?:run|apply) migration",
    ),
    Rule(
        Category.CONFIG_ERROR,
        "permission_denied",
        "denied eacces accessdeniedexception",
        r"\bpermission denied\b|\beacces\b|\baccessdeniedexception\b",
    ),
    Rule(
        Category.CONFIG_ERROR,
        "missing_file",
        "such enoent filenotfoundexception",
        r"\bno such file or directory\b|\benoent\b|\bfilenotfoundexception\b",
    ),
    Rule(
        Category.CONFIG_ERROR,
        "port_in_use",
        "already eaddrinuse bindexception",
        r"\baddress already in use\b|\beaddrinuse\b|\bbindexception\b",
    ),
    # --- load: the figure is a symptom of traffic, a restart fixes nothing ---
    Rule(
        Category.LOAD_SURGE,
        "flood",
        "flooding flood floods ddos dos syn attack attacks botnet bots",
        r"\bsyn flooding\b|\bflood(?:ing|ed)?\b|\b(?:d?dos|denial of service)\b(?! ?protection enabled)"
        r"|\b(?:under|detected|possible) (?:a |an )?(?:\w+ )?attack\b|\bbotnet\b|\bbot traffic\b",
    ),
    Rule(
        Category.LOAD_SURGE,
        "rate_limited",
        "limiting limited limit throttling throttled throttle 429 ratelimit ratelimited shedding shed toomanyrequests",
        r"\blimiting (?:requests|connections)\b|\brate[- ]?limit(?:ed|ing|er)?\b|\bthrottl(?:ed|ing|e)\b"
        r"|\btoo many requests\b|\b(?:status|code|http|returned|response|got)[ =:]{0,3}429\b|\b429 too\b"
        r"|\b(?:load )?shedding\b|\bshed(?:ding)? load\b|\btoomanyrequests",
    ),
    Rule(
        Category.LOAD_SURGE,
        "traffic_surge",
        "traffic surge spike spikes burst requests rps qps connections load",
        r"\btraffic (?:surge|spike|burst|increase)|\b(?:surge|spike|burst) (?:of|in) (?:traffic|requests"
        r"|connections|load)\b|\brequest rate\b[^\n]{0,40}?\b(?:above|over|exceed|x normal|times)"
        r"|\b(?:rps|qps)\b[^\n]{0,30}?\b(?:above|over|exceed|spike|x normal|times normal)"
        r"|\b\d+(?:\.\d+)?x (?:normal|baseline|usual) (?:traffic|load|rate)",
    ),
    Rule(
        Category.LOAD_SURGE,
        "backlog",
        "backlog overflow overflowed queue queued listen accept pending",
        r"\bbacklog (?:full|exceeded|overflow|limit)|\blisten queue (?:of|overflow)|\baccept queue\b"
        r"|\boverflow(?:ed|ing|s)?\b"
        r"|\bqueue (?:is )?full\b|\bpending (?:requests? )?overflow\b|\btimes the listen queue",
    ),
    Rule(
        Category.LOAD_SURGE,
        "resource_alarm",
        "alarm alarms flow blocking publishers watermark maxclients maxconn clients",
        r"\b(?:memory|disk|resource)(?: resource)?(?: limit)? alarm\b|\balarm (?:set|raised)\b"
        r"|\bflow control\b|\bblocking (?:publishers|connections)\b|\bhigh watermark\b"
        r"|\bmax(?:imum)? number of clients reached\b|\bmaxclients\b|\bmaxconn\b",
    ),
    Rule(
        Category.LOAD_SURGE,
        "circuit_breaker",
        "circuitbreakingexception circuit breaker tripped rejected rejecting execution",
        r"\bcircuitbreakingexception\b|\bcircuit ?breaker\b[^\n]{0,40}?\b(?:tripped|data too large|parent)\b"
        r"|\bbreaker\b[^\n]{0,20}?\btripped\b|\brejected execution\b|\bes_rejected_execution"
        r"|\bcircuit_breakers?\b[^\n]{0,60}?\bopen\b",
    ),
    Rule(
        Category.LOAD_SURGE,
        "worker_limit",
        "reached maxrequestworkers maxclients max_children",
        r"\breached (?:the )?(?:maxrequestworkers|maxclients|pm\.max_children|max_children)\b"
        r"|\bserver reached pm\.max_children\b",
    ),
    Rule(
        Category.LOAD_SURGE,
        "host_contention",
        "steal hypervisor noisy neighbour neighbor st",
        r"\bcpu steal\b|\bsteal(?: time)?\W{0,3}\d{2,}(?:\.\d+)?\s?%|\bhypervisor contention\b"
        r"|\bnoisy neighbou?r\b|\bst=\s?[2-9]\d(?:\.\d+)?\b",
    ),
    # --- a change just before the fault: a restart replays it ---
    Rule(
        Category.RECENT_CHANGE,
        "package_change",
        "updated installed upgraded erased removed upgrade install status",
        r"\b(?:updated|installed|upgraded|erased|removed|downgraded): [\w.+:-]+-\d"
        r"|\bstatus installed [\w.+-]+:\w+\b|\b(?:upgrade|install) [\w.+-]+:(?:amd64|arm64|i386|all)\b",
    ),
    Rule(
        Category.RECENT_CHANGE,
        "gitops_apply",
        "apply applied reconciled revision",
        r"\bserver-side apply\b|\b(?:applied|reconciled) revision\b|\brevision[=: ]+\S*sha\d*:[0-9a-f]{7,}",
    ),
    Rule(
        Category.RECENT_CHANGE,
        "rollout",
        "scaled replica present created container",
        r"\bscaled (?:up|down) replica set\b|\bcontainer image \S+ already present on machine\b"
        r"|\bcreated container\b|\bnew replica set\b",
    ),
    Rule(
        Category.RECENT_CHANGE,
        "config_management",
        "ansible invoked catalog chef puppet salt changed resources",
        r"\bansible[\w.-]*\b[^\n]{0,40}?\binvoked with\b|\bapplied catalog\b|\bapplying configuration version\b"
        r"|\bchef client finished, [1-9]\d*/\d+ resources updated|\bchanged=[1-9]\d*\b"
        r"|\b(?:puppet|chef|salt|ansible)\b[^\n]{0,60}?\b(?:changed|updated|applied)\b",
    ),
    Rule(
        Category.RECENT_CHANGE,
        "deploy",
        "deploy deployed deploying deployment rollout rolled rolling helm upgrade upgraded upgrading release switched"
        " released canary",
        r"\bdeploy(?:ed|ing)\b|\bdeploy(?:ment)? (?:of|started|finished|complete\w*|succeeded|to)\b"
        r"|\bnew deployment\b|\bswitched\b[^\n]{0,60}?\breleases?\b|\broll(?:ed|ing)? ?out\b"
        r"|\brolling (?:update|upgrade|restart)\b"
        r"|\bhelm (?:upgrade|install)\b|\bupgrad(?:ed|ing|e)\b|\brelease \S+ (?:installed|applied)"
        r"|\bcanary\b|\bnew release\b",
    ),
    Rule(
        Category.RECENT_CHANGE,
        "new_image",
        "image pulled pulling version versions rev revision build was previously replacing imagecreate",
        r"\b(?:successfully )?pull(?:ed|ing) image\b|\bnew (?:image|version|build|revision)\b"
        r"|\bimage (?:changed|updated)\b|\bversion (?:changed|bumped|updated) (?:from|to) v?\d+\.\d+"
        r"|\bimagecreate\b|\bimage ?(?:create|pull)(?:d|ed)? event\b"
        r"|\b(?:changed|updated|bumped) (?:from )?(?:version|v\d)|\bfrom v?\d+\.\d+\S* to v?\d+\.\d+"
        r"|\bv?\d+\.\d+\.\d+\S*,? (?:was|previously|replacing|from) v?\d+\.\d+",
    ),
    Rule(
        Category.RECENT_CHANGE,
        "config_reload",
        "reload reloaded reloading sighup configuration config flag flags feature toggle toggled schema"
        " migration migrations applying applied changed refreshed updated reloaded keys properties property"
        " settings parameters parameter options option",
        r"\breload(?:ed|ing)? (?:the )?(?:config(?:uration)?|settings|rules|policy)\b"
        r"|\b(?:config(?:uration)?|settings) (?:reload(?:ed)?|changed|updated|modified)\b|\bsighup\b"
        r"|\bfeature[- ]?flag\b|\bflag \S+ (?:enabled|disabled|changed|toggled|set to)\b|\btoggled\b"
        r"|\bschema (?:change|migration)\b|\b(?:applying|applied|running) migrations?\b"
        r"|\b(?:config(?:uration)?|settings|properties|property|keys|flags?|parameters?|options?)\b[^\n]{0,20}?"
        r"\b(?:changed|refreshed|updated|reloaded)\b",
    ),
    # --- crash loops: the service already restarted and failed again ---
    Rule(
        Category.CRASH_LOOP,
        "restart_loop",
        "restart restarting restarts restarted counter backoff back crashloopbackoff retries respawning"
        " respawn repeated terminated unexpectedly restartcount exited fatal",
        r"\brestart counter is at \d+|\bstart request repeated too quickly\b|\bback-?off restarting\b"
        r"|\bcrashloopbackoff\b|\btoo many start retries\b|\bentered fatal state\b"
        r"|\brespawn(?:ing)? too fast\b|\brestart ?count\W{0,3}[1-9]"
        r"|\bscheduled restart job\b|\brestarting (?:container|pod)\b"
        r"|\brestarted [2-9]\d* times\b|\bhas done this (?:[2-9]|\d{2,}) time",
    ),
    # --- dependencies (other hosts and services) ---
    Rule(
        Category.DEPENDENCY_FAILURE,
        "connection_refused",
        "refused econnrefused connectexception",
        r"\bconnection refused\b|\bconnection to \S+ refused\b|\beconnrefused\b|\bconnectexception\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "connection_reset",
        "reset econnreset",
        r"\bconnection reset\b|\beconnreset\b",
        unless=r"^(?![^\n]*\b(?:upstream|backend|remote server)\b)[^\n]*\bclient\b|\[preauth\]",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "connection_timeout",
        "connect connection etimedout sockettimeoutexception connecttimeoutexception upstream connecting dial",
        r"\bconnect(?:ion)? timed out\b"
        r"|\bconnect(?:ion)? timeout (?:after|while|to|expired|exceeded|occurred)\b"
        r"|\betimedout\b|\bsockettimeoutexception\b|\bconnecttimeoutexception\b|\bupstream timed out\b"
        r"|\btimed out (?:while )?connecting\b|\bdial tcp [^\n]{0,80}?\bi/o timeout\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "dns_failure",
        "unknownhostexception nxdomain resolution known resolve enotfound eai_again host servfail",
        r"\bunknownhostexception\b|\bnxdomain\b|\btemporary failure in name resolution\b"
        r"|\bname or service not known\b|\bcould not resolve\b|\bfailed to resolve\b|\benotfound\b"
        r"|\beai_again\b|\bno such host\b|\bservfail\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "no_route_to_host",
        "route noroutetohost noroutetohostexception ehostunreach enetunreach unreachable",
        r"\bno ?route ?to ?host|\behostunreach\b|\benetunreach\b|\b(?:host|network) (?:is )?unreachable\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "upstream_error",
        "502 503 504 upstream upstreams circuit circuitbreaker",
        r"\b502 bad gateway\b|\b503 service unavailable\b|\b504 gateway time-?out\b"
        r"|\bupstream[^\n]{0,60}?\b(?:502|503|504)\b|\bno (?:live|healthy|available) upstreams?\b"
        r"|\b(?:returned|received|got) (?:http |status )?(?:502|503|504)\b"
        r"|\bcircuit ?breaker (?:is )?open\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "tls_failure",
        "certificate sslhandshakeexception tls ssl handshake handshake_failure x509 pkix",
        r"\bcertificate (?:has )?expired\b|\bcertificate verify failed\b|\bsslhandshakeexception\b"
        r"|\b(?:tls|ssl) handshake (?:failed|failure|error|timeout)|\bhandshake_failure\b"
        r"|\bx509: certificate\b|\bpkix path building failed\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "dependency_unavailable",
        "unavailable unreachable down reachable available responding unresponsive offline nfs connections"
        " clients slots",
        r"\b(?:database|db|postgres(?:ql)?|mysql|mariadb|mongo(?:db)?|redis|memcached?|cassandra"
        r"|elasticsearch|kafka|rabbitmq|amqp|broker|cache|ldap|zookeeper|etcd|consul|backend|upstream|dependency)"
        r"(?: (?:server|cluster|node|host|service|connection))? (?:is )?(?:unavailable|unreachable|down"
        r"|not reachable|not available|not responding|unresponsive|offline)\b"
        r"|\bnfs: server \S+ not responding\b|\btoo many (?:connections|clients)\b"
        r"|\bremaining connection slots are reserved\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "cannot_connect",
        "connect channel contacting lost broken severed established broker closed acquire renew answer reply"
        " response replying answering available giving unable lock canceling reading",
        r"\b(?:could not|couldn't|can ?not|can't|unable to|failed to) (?:connect|open channel) to\b"
        r"|\berror (?:in )?contacting\b|\bretrying connect to server\b|\blost connection to\b"
        r"|\bconnection broken\b|\blink has been severed\b|\bbroker may not be available\b"
        r"|\bconnection to [^\n]{0,80}?could not be established\b"
        r"|\bserver closed the connection unexpectedly\b"
        r"|\bcannot acquire connection\b|\bfailed to renew lease\b|\bgot not? answer from any\b"
        r"|\bno (?:reply|response|answer) from\b|\bnot (?:replying|answering)\b"
        r"|\bconnection is not available\b|\bgiving up after \d+ (?:attempts|retries|tries)\b"
        r"|\bunable to acquire (?:jdbc )?connection\b|\block (?:wait )?timeout\b|\bcanceling statement due to\b"
        r"|\berror reading status line from remote server\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "deadline_exceeded",
        "deadline deadlineexceeded",
        r"\b(?:context )?deadline ?exceeded\b",
        unless=r"\bprobe\b|\bliveness\b|\breadiness\b|\bwatchdog\b|\bhealthz\b|\blivez\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "lock_held_elsewhere",
        "held holder",
        r"\b(?:lock|lease|latch|mutex)\b[^\n]{0,80}?\b(?:held by|holder)\b[^\n]{0,80}?\b(?:pid|host|client_addr|node"
        r"|server|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\b|\bidle in transaction\b",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "zookeeper_session",
        "connectionloss connectionlossexception sessionexpired sessionexpiredexception expired loss expiring",
        r"\bconnectionloss|\bsessionexpired|\bsession ?expired\b|\bconnection ?loss\b"
        r"|\bexpiring session 0x[0-9a-f]+, timeout of \d+ms exceeded",
    ),
    Rule(
        Category.DEPENDENCY_FAILURE,
        "mod_jk_error",
        "mod_jk",
        r"\bmod_jk child workerenv in error state\b|\bmod_jk child init \d+ -\d+",
    ),
    # --- recoverable, local to the process ---
    Rule(
        Category.OOM_KILL,
        "oom_kill",
        "outofmemoryerror memory oom oomkill oomkilled oomkiller oom_kill oom_killer oom_killed killed"
        " memoryerror runtime javascript allocation outofmemoryexception container nomemoryerror",
        r"\boutofmemoryerror\b|\bout of memory: kill|\binvoked oom-killer\b|\boom[-_ ]?kill(?:er|ed)?\b"
        r"|\bkilled process \d+|\bmemory cgroup out of memory\b|\bmemoryerror\b|\boom-kill:"
        r"|\bruntime: out of memory\b|\bjavascript heap out of memory\b|\bheap limit allocation failed\b"
        r"|\boutofmemoryexception\b|\bcontainer oom\b|\boomkilled\b|\bnomemoryerror\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "deadlock",
        "deadlock deadlocks deadlocked goroutines cycle circular",
        r"\bjava-level deadlock\b|\bfound \d+ deadlocks?\b|\bdeadlocked threads?\b"
        r"|\bthreads? (?:are |is )?deadlocked\b"
        r"|\bdeadlock (?:detected )?(?:in|between|among) (?:threads|workers)\b"
        r"|\ball goroutines are asleep\b|\block (?:order )?cycle\b|\bcircular wait\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "pool_exhausted",
        "exhausted saturated depleted busy blocked rejectedexecutionexception reached",
        r"\b(?:thread|worker|executor|request) ?pool (?:is )?(?:exhausted|saturated|depleted)\b"
        r"|\ball (?:worker |request )?threads (?:\(\d+\) )?are (?:currently )?busy\b"
        r"|\b(?P<n_slash>\d+)/(?P=n_slash) (?:\w+ ){0,3}(?:threads|workers) (?:busy|blocked)\b"
        r"|\b(?P<n_of>\d+) of (?P=n_of) (?:\w+ )?(?:threads|workers) (?:are )?(?:busy|blocked)\b"
        r"|\brejectedexecutionexception\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "watchdog_timeout",
        "watchdog liveness heartbeat timeout harakiri starvation",
        r"\bwatchdog\b[^\n]{0,80}?\b(?:timeout|timed out|expired|unresponsive|stuck|hung|deadline exceeded"
        r"|missed)\b|\bliveness (?:probe |check |self-check )?(?:failed|failing|missed|deadline exceeded)\b"
        r"|\bheartbeat (?:is )?(?:late|stale)\b|\bworker timeout\b|\bharakiri\b"
        r"|\bthread ?pool starvation\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "blocked_thread_checker",
        "blockedthreadchecker blocked",
        r"\bblockedthreadchecker\b|\bhas been blocked for \d+ ?ms, time limit is\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "stuck_request",
        "stuck responding hung blocked loop notifystuckthreaddetected stuckthreaddetectionvalve stopped",
        r"\bnotifystuckthreaddetected\b|\bmay be stuck\b|\bstopped processing traffic for \d+"
        r"|\bstuck (?:threads?|requests?|workers?)\b|\b(?:threads?|requests?|workers?) (?:\(\d+\) |\d+ )?"
        r"(?:is |are |has been )?stuck\b|\bnot responding\b"
        r"|\bevent loop (?:blocked|lag(?:ged)? (?:of )?(?:\d{4,}\s?ms"
        r"|\d{2,}(?:\.\d+)?\s?s\b))",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "heartbeat_missed",
        "heartbeat heartbeats",
        r"\bno heartbeats? (?:received |sent )?(?:for|in|since)\b|\bmissed (?:\d+ )?heartbeats?\b"
        r"|\bheartbeats? (?:missing|missed|overdue|not (?:sent|received))\b|\blast heartbeat\b"
        r"|\bheartbeat\b[^\n]{0,60}?\bis \d+ ?(?:s|sec|seconds|m|min|minutes) old\b",
        unless=r"\bfrom (?:node|peer|member|broker|server|leader|replica|follower|client)\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "loop_stalled",
        "loop stalled stall blocked",
        r"\b(?:event |main |run |reactor |io )?loop (?:is )?(?:stalled|blocked|stuck)\b"
        r"|\bstalled for \d+|\bblocked for \d+\s?m?s\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "scheduler_stalled",
        "scheduler",
        r"\bscheduler (?:does not appear to be|is not|isn't|not) running\b|\bscheduler (?:stalled|stuck|hung)",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "defunct_children",
        "defunct zombie zombies",
        r"\bdefunct\b|\bzombie (?:processes|children|process)\b|\b\d+ zombies?\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "poll_timeout",
        "poll",
        r"\bconsumer poll timeout has expired\b|\bpoll\(\) (?:was )?(?:longer|not called)\b"
        r"|\bmax\.poll\.interval\.ms\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "descriptor_leak",
        "files emfile descriptors descriptor",
        r"\btoo many open files\b|\bemfile\b|\bfile descriptors? (?:exhausted|leak|limit)"
        r"|\bout of file descriptors\b",
    ),
    Rule(
        Category.HUNG_PROCESS,
        "gc_thrash",
        "gc pause garbage",
        r"\bgc\b[^\n]{0,120}?\bpause\b[^\n]{0,80}?\b\d{4,}(?:\.\d+)?\s?ms\b|\bdetected pause in jvm\b"
        r"|\bgc (?:time|overhead)(?: ratio)?\s*(?:[=:]|of|at)?\s*(?:[3-9]\d|100)(?:\.\d+)?\s?%"
        r"|\b(?:long|excessive) (?:gc|garbage collection) pauses?\b|\bgc thrash\w*",
    ),
    Rule(
        Category.MEMORY_PRESSURE,
        "memory_high",
        "memory heap swap swapping enomem allocation used_memory virtual",
        r"\bmemory leak\b|\b(?:high|critical|severe) memory (?:pressure|usage)\b"
        r"|\bmemory pressure (?:high|critical)\b"
        r"|\bmemory (?:usage|utili[sz]ation|used) (?:is )?(?:at |above |over )?(?:9\d|100)(?:\.\d+)?\s?%"
        r"|\bheap\b[^\n%]{0,40}?\b(?:9\d|100)(?:\.\d+)?\s?%"
        r"|\bheap (?:usage |space )?(?:is )?(?:near|close to|approaching|at|above|over)"
        r" (?:the )?(?:limit|max|maximum|capacity)\b|\bswap(?:ping)? storm\b"
        r"|\b(?:excessive|heavy) swapping\b|\blow on memory\b|\bcannot allocate memory\b|\benomem\b"
        r"|\bpage allocation failure\b|\bout of memory (?:allocating|trying to allocate)\b"
        r"|\blow virtual memory condition\b"
        r"|\bused_memory\b[^\n%]{0,40}?\b(?:9\d|100)(?:\.\d+)?\s?%",
    ),
    Rule(
        Category.CPU_SATURATION,
        "cpu_high",
        "cpu",
        r"\bcpu\b[^\n%]{0,30}?\b(?:9\d|[1-9]\d\d)(?:\.\d+)?\s?%|\b(?:9\d|100)(?:\.\d+)?\s?% cpu\b"
        r"|\bhigh cpu\b|\bcpu (?:is )?(?:saturat\w+|pegged|starv\w+)",
        unless=r"\bidle\b",
    ),
)
