#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Re-encode a GGUF model's matrices in the type this CPU multiplies fastest.

The interaction model ships as "Q4_K_M", but Qwen2.5 0.5B's rows of 896 values do
not fill K-quant blocks of 256, so most of its matrices are Q5_0. llama.cpp's CPU
backend has no repacked kernels for Q5_0: on this 2-core AVX2 machine each prompt
token costs ~23 ms, batch or not, and a reply decodes at ~20 tok/s. Q4_0 matrices
are repacked at load into interleaved blocks with AVX2 GEMM/GEMV kernels; the
same model re-encoded in Q4_0 reads a turn's prompt ~20 % faster and writes
~40 % faster (``benchmarks/bench_llm_turn_cost.py --model``), and answers a
40-question quiz as well as the original (``docs/bench/local.md``).

The conversion runs once, after the parts are assembled and verified, into the
same cache directory: each matrix is dequantized to float32 (gguf-py's reference
code) and quantized to the target type; 1-D tensors and the ``keep`` tensors are
copied byte for byte, and every metadata key is kept. As with the assembly, the
output is written to a temporary file and renamed, and a stamp file records the
source's sha256, the conversion's settings, the output's sha256 and its
fingerprint (:func:`~pipecat_tandem.models.weights.fingerprint_file`), so later
starts check size, mtime and the fingerprint instead of re-converting; a file
the stamp does not vouch for is re-hashed, and re-made from the source when it
does not match. A read-only cache that holds the converted file is used as is.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipecat_tandem.errors import ModelUnavailableError
from pipecat_tandem.models.weights import (
    LOCAL_EXTRA_HINT,
    QWEN_05B,
    ProgressCallback,
    SplitModel,
    cache_error,
    ensure_model,
    fingerprint_file,
    locked,
    model_dir,
    read_stamp,
    sha256_file,
    stderr_progress,
    write_stamp,
)

#: Bumped whenever the conversion's output could change for the same input.
CONVERTER_VERSION = 1

#: Source types gguf-py dequantizes (others are copied unconverted).
_READABLE = frozenset(
    "F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS".split()
)


@dataclass(frozen=True)
class RequantizedModel:
    """A :class:`~pipecat_tandem.models.weights.SplitModel` re-encoded in another type.

    Parameters:
        source: The shipped model it is made from.
        filename: File name of the converted model in the cache directory.
        qtype: Target GGML type of the matrices (``"Q4_0"``, ``"Q8_0"``...).
        keep: Tensors copied as they are (an embedding table is only looked up,
            so re-encoding it gains nothing and only loses precision).
    """

    source: SplitModel
    filename: str
    qtype: str = "Q4_0"
    keep: frozenset[str] = field(default_factory=frozenset)

    @property
    def name(self) -> str:
        """Human-readable name (used in messages)."""
        return f"{self.source.name} as {self.qtype}"


#: The interaction model as the offline default runs it (see the module docstring).
QWEN_05B_Q4_0 = RequantizedModel(
    source=QWEN_05B,
    filename="qwen2.5-0.5b-instruct-q4_0.gguf",
    qtype="Q4_0",
    keep=frozenset({"token_embd.weight"}),
)

ModelWeights = SplitModel | RequantizedModel
"""Anything :func:`ensure_weights` can return a file for."""


def ensure_weights(
    model: ModelWeights,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """The path of ``model``'s verified file, assembling or converting it once if needed.

    Raises:
        ModelUnavailableError: Parts missing or corrupt, the gguf package missing,
            or a source that is not a GGUF file.
    """
    if isinstance(model, SplitModel):
        return ensure_model(model, cache_dir=cache_dir, progress=progress)
    return ensure_requantized(model, cache_dir=cache_dir, progress=progress)


def ensure_requantized(
    model: RequantizedModel,
    *,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Return the converted model's path, converting from the verified source if needed.

    Args:
        model: Which conversion.
        cache_dir: Where to keep the files (default: the model cache directory).
        progress: ``(label, done, total)`` while hashing or converting; defaults
            to a percentage line on stderr.

    Raises:
        ModelUnavailableError: As :func:`~pipecat_tandem.models.weights.ensure_model`,
            or the conversion failed (its cause is named).
    """
    report = progress or stderr_progress
    source = ensure_model(model.source, cache_dir=cache_dir, progress=report)
    target = (Path(cache_dir) if cache_dir is not None else model_dir()) / model.filename
    recipe = {
        "source_sha256": model.source.sha256,
        "qtype": model.qtype,
        "keep": sorted(model.keep),
        "converter": CONVERTER_VERSION,
    }
    with ExitStack() as stack:
        try:
            stack.enter_context(locked(target.with_name(target.name + ".lock")))
        except OSError as e:
            # A read-only cache: usable if it already holds the converted file.
            if _is_current(target, recipe, report):
                return target
            action = (
                f"{target.name} is corrupt and cannot be converted again in"
                if target.exists()
                else "cannot write to"
            )
            raise cache_error(target.parent, e, action) from e
        if _is_current(target, recipe, report):
            return target
        digest = requantize_gguf(source, target, model.qtype, keep=model.keep, progress=report)
        st = target.stat()
        write_stamp(
            target,
            {
                **recipe,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "sha256": digest,
                "fingerprint": fingerprint_file(target),
            },
        )
    return target


def requantize_gguf(
    source: Path,
    target: Path,
    qtype: str,
    *,
    keep: frozenset[str] = frozenset(),
    progress: ProgressCallback | None = None,
) -> str:
    """Write ``source`` with its matrices in ``qtype`` to ``target``; return its sha256.

    Tensors already in ``qtype``, 1-D tensors, tensors named in ``keep`` and
    matrices whose rows do not divide into ``qtype`` blocks are copied as they
    are. The file appears under ``target`` only once complete.

    Raises:
        ModelUnavailableError: ``gguf`` is not installed, ``qtype`` is not a type
            it can write, or ``source`` cannot be read as GGUF.
    """
    gguf = _import_gguf()
    target_type = _quant_type(gguf, qtype)
    report = progress or stderr_progress
    try:
        reader = gguf.GGUFReader(source)
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise ModelUnavailableError(f"{source} is not a readable GGUF file ({e})") from e
    plan = [(t, _converts(gguf, t, target_type, keep)) for t in reader.tensors]
    try:
        return _write(gguf, reader, plan, target, target_type, qtype, report)
    except OSError as e:
        # Reading the source was checked above, so this is the target's directory.
        raise cache_error(target.parent, e, f"cannot write {target.name} to") from e


def _write(
    gguf: Any,
    reader: Any,
    plan: list[tuple[Any, bool]],
    target: Path,
    target_type: Any,
    qtype: str,
    report: ProgressCallback,
) -> str:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(tmp, arch=_architecture(reader), use_temp_file=False)
        _copy_metadata(gguf, reader, writer)
        for tensor, convert in plan:
            out_type = target_type if convert else tensor.tensor_type
            # The byte shape of a uint8 view works for every type, float ones included.
            elements = [int(n) for n in reversed(tensor.shape)]  # numpy order
            shape = gguf.quant_shape_to_byte_shape(elements, out_type)
            nbytes = int(np.prod(shape))
            writer.add_tensor_info(tensor.name, shape, np.uint8, nbytes, raw_dtype=out_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = sum(int(t.n_bytes) for t in reader.tensors)
        done = 0
        label = f"converting {target.name} ({qtype}, once)"
        for tensor, convert in plan:
            data = tensor.data
            if convert:
                floats = gguf.quants.dequantize(data, tensor.tensor_type)
                data = gguf.quants.quantize(floats, target_type)
            writer.write_tensor_data(data)
            done += int(tensor.n_bytes)
            report(label, done, total)
        writer.close()
        os.chmod(tmp, 0o644)
        digest = sha256_file(tmp, f"verifying {target.name}", report)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def _import_gguf() -> Any:
    try:
        import gguf
    except ImportError as e:
        raise ModelUnavailableError(
            f"converting the interaction model needs the gguf package: install it with "
            f"`{LOCAL_EXTRA_HINT}` (or `pip install gguf==0.19.0`)"
        ) from e
    return gguf


def _quant_type(gguf: Any, qtype: str) -> Any:
    writable = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"}
    if qtype not in writable:
        raise ModelUnavailableError(
            f"cannot convert to {qtype!r}: the supported types are {', '.join(sorted(writable))}"
        )
    return gguf.GGMLQuantizationType[qtype]


def _converts(gguf: Any, tensor: Any, target_type: Any, keep: frozenset[str]) -> bool:
    if tensor.name in keep or tensor.tensor_type == target_type or len(tensor.shape) < 2:
        return False
    if tensor.tensor_type.name not in _READABLE:
        return False  # a type gguf-py cannot read back: keep it rather than fail
    block, _ = gguf.GGML_QUANT_SIZES[target_type]
    return int(tensor.shape[0]) % block == 0


def _architecture(reader: Any) -> str:
    entry = reader.fields.get("general.architecture")
    if entry is None:
        raise ModelUnavailableError("the GGUF file names no general.architecture")
    return str(entry.contents())


def _copy_metadata(gguf: Any, reader: Any, writer: Any) -> None:
    for name, entry in reader.fields.items():
        # The writer adds the architecture itself; GGUF.* are the reader's header fields.
        if name == "general.architecture" or name.startswith("GGUF."):
            continue
        if name == "general.alignment":
            writer.data_alignment = int(entry.contents())
        value_type = entry.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, entry.contents(), value_type, sub_type=entry.types[-1])
        else:
            writer.add_key_value(name, entry.contents(), value_type)


def _is_current(target: Path, recipe: dict[str, Any], report: ProgressCallback) -> bool:
    try:
        st = target.stat()
    except OSError:
        return False
    stamp = read_stamp(target)
    if stamp is None or any(stamp.get(k) != v for k, v in recipe.items()):
        return False
    if stamp.get("size") != st.st_size:
        return False
    fingerprint = fingerprint_file(target)
    if stamp.get("mtime_ns") == st.st_mtime_ns and stamp.get("fingerprint") == fingerprint:
        return True
    # Touched since, or bytes changed under the same mtime (or a stamp from before
    # fingerprints): trust it only if its bytes are still the ones converted.
    if sha256_file(target, f"verifying {target.name}", report) != stamp.get("sha256"):
        return False
    write_stamp(target, {**stamp, "mtime_ns": st.st_mtime_ns, "fingerprint": fingerprint})
    return True
