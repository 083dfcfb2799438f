"""Model registry and loading: the embedded default, hub ids and local checkpoint folders.

Every task compares three views of one document:
- **longformer**: a Longformer that reads up to `max_tokens` tokens in one pass (longer documents in
  overlapping windows);
- **truncated**: a 512-token model that reads only the start of the document (RoBERTa-style);
- **chunked**: the same 512-token model run on every 512-token chunk independently, best result wins.

`load_models` returns a `ModelPair` holding the Longformer and the 512-token baseline.
For the embedded default the baseline is MiniLM itself (full attention, 512 positions): the exact
analogue of "RoBERTa-512 vs Longformer-from-RoBERTa". For hub checkpoints the baseline is a given
RoBERTa-style id, a known partner (allenai/longformer-base-4096 -> roberta-base), or else the same
Longformer limited to 512 tokens.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from longformer_core import settings
from longformer_core.model.convert import (
    ConversionConfig,
    embedded_longformer_dir,
    embedded_source_dir,
    quiet_transformers,
)

log = logging.getLogger(__name__)

EMBEDDED = "embedded"  # the id users pick for the offline default
BASELINE_TOKENS = 512  # what a RoBERTa/BERT-style model can read
KNOWN_BASELINES = {  # Longformer checkpoint -> the short model it was converted from
    "allenai/longformer-base-4096": "roberta-base",
    "allenai/longformer-large-4096": "roberta-large",
}
LONG_MODEL_TYPES = ("longformer",)
QA_HEAD_DIR = settings.REPO_ROOT / "assets" / "qa_head"  # the shipped embedded QA head
# The embedded Longformer's long reader (`finetune-long`), when one is shipped: the Longformer column then reads
# one long window per question (qa.answering.read_long_window).
LONG_HEAD_DIR = settings.REPO_ROOT / "assets" / "long_head"
HUB_PROBE_TIMEOUT_S = 3.0  # how long to wait for the hub before treating the machine as offline
DTYPE_ENV = "LONGDOC_DTYPE"  # auto (default) | fp32 | bf16: the arithmetic inference runs in
DTYPE_CHOICES = {
    "auto": None,
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPU features that do bf16 arithmetic natively


class ModelLoadError(ValueError):
    """A model could not be loaded; the message tells the user what to do."""


@dataclass
class LoadedModel:
    """One loaded model and what it can do.

    `model` is the task model (QA / classification head) when the checkpoint has one, else the bare
    encoder; `encoder` is always the bare encoder inside it (for hidden states).
    """

    name: str  # id or path the user gave ("embedded" for the default)
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    max_tokens: int  # longest input (special tokens included) one forward pass accepts
    is_longformer: bool  # sliding-window + global attention (accepts global_attention_mask)
    head: str = "none"  # "none" | "qa" | "classification"
    labels: list[str] = field(default_factory=list)  # classification head label names
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # A separately trained extractive reader for this encoder (the embedded QA head), kept apart from
    # `model` so embeddings, classification and the attention views keep using the untouched encoder.
    span_model: PreTrainedModel | None = None
    # The span model was trained at length (`finetune-long`): the Longformer reads one long window per question
    # (qa.answering.read_long_window) instead of short regions, and `answer_type` tells span / yes / no.
    long_reader: bool = False
    answer_type: torch.nn.Module | None = None
    # What else the long reader saw global in training besides the question (its card's "doc_global", a strategy
    # key such as "paragraphs"): its long window keeps those tokens global whatever strategy the user picks.
    reader_globals: str = "question"
    # The arithmetic of inference: bfloat16 runs the matmuls under autocast (weights stay fp32).
    dtype: torch.dtype = torch.float32

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context to run a forward pass in: bf16 autocast when `dtype` is bfloat16, else nothing."""
        return inference_autocast(self.device, self.dtype)

    @property
    def encoder(self) -> PreTrainedModel:
        """The bare encoder (LongformerModel / BertModel / RobertaModel) inside `model`."""
        return getattr(self.model, self.model.base_model_prefix, self.model)

    @property
    def attention_window(self) -> int | None:
        window = getattr(self.model.config, "attention_window", None)
        if isinstance(window, (list, tuple)):
            return int(max(window))
        return int(window) if window else None

    def limited_to(self, max_tokens: int) -> LoadedModel:
        """The same weights, allowed to read at most `max_tokens` tokens (the truncated view)."""
        return LoadedModel(
            name=f"{self.name} (first {max_tokens} tokens)",
            model=self.model,
            tokenizer=self.tokenizer,
            max_tokens=min(max_tokens, self.max_tokens),
            is_longformer=self.is_longformer,
            head=self.head,
            labels=self.labels,
            device=self.device,
            span_model=self.span_model,
            long_reader=self.long_reader,
            answer_type=self.answer_type,
            reader_globals=self.reader_globals,
            dtype=self.dtype,
        )


@dataclass
class ModelPair:
    """The Longformer and the 512-token baseline that every task compares."""

    longformer: LoadedModel
    baseline: LoadedModel
    name: str  # what the UI shows

    @functools.cached_property
    def same_tokenizer(self) -> bool:  # compared once: two 30k-word vocabularies take ~50 ms of Python
        return self.longformer.tokenizer.get_vocab() == self.baseline.tokenizer.get_vocab()


def default_device() -> torch.device:
    """CUDA when present (and not disabled with LONGDOC_DEVICE=cpu), else CPU."""
    wanted = settings.value("LONGDOC_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX512-BF16 or AMX-BF16), detected at run time.

    Without them torch emulates bf16 matmuls, which is slower than fp32: never assume the flag.
    """
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        try:
            capabilities = get_capabilities()
            return any(bool(capabilities.get(flag)) for flag in CPU_BF16_FLAGS)
        except (RuntimeError, AttributeError):  # an older torch: read the kernel's flags instead
            pass
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return any(flag in line.split() for flag in CPU_BF16_FLAGS)
    return False


def compute_dtype(device: torch.device | None = None) -> torch.dtype:
    """The dtype inference runs in: $LONGDOC_DTYPE (auto | fp32 | bf16), auto meaning bf16 where native.

    auto: bf16 on a CPU with AVX512-BF16 or AMX, or a CUDA GPU that supports it; fp32 elsewhere.

    Raises:
        ValueError: LONGDOC_DTYPE is set to something else.
    """
    raw = settings.value(DTYPE_ENV).lower()
    if raw not in DTYPE_CHOICES:
        raise ValueError(
            f"{DTYPE_ENV}={raw!r} is not a known setting: use auto (bf16 where the hardware has it), fp32 or bf16."
        )
    chosen = DTYPE_CHOICES[raw]
    if chosen is not None:
        return chosen
    device = device or default_device()
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return torch.float32


def inference_autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """torch.autocast on `device` in `dtype` when it is lower than fp32; a no-op context for fp32."""
    if dtype == torch.float32 or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _head_of(config) -> str:
    archs = " ".join(getattr(config, "architectures", None) or [])
    if "QuestionAnswering" in archs:
        return "qa"
    if "SequenceClassification" in archs:
        return "classification"
    return "none"


def _positions_of(config) -> int:
    """Longest input the checkpoint's position table allows (RoBERTa-style models reserve pad+1 rows)."""
    n = int(config.max_position_embeddings)
    if config.model_type in ("roberta", "longformer", "xlm-roberta", "camembert"):
        n -= int(config.pad_token_id or 0) + 1
    return n


def _hub_offline() -> bool:
    """Whether the Hugging Face hub must not be asked: HF_HUB_OFFLINE set, or the hub cannot be reached.

    Without this, transformers retries an unreachable hub for ~25 s per file before giving up, so a typo
    in the sidebar on an air-gapped machine would freeze the app for half a minute.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    return not _reachable(os.environ.get("HF_ENDPOINT") or "https://huggingface.co", HUB_PROBE_TIMEOUT_S)


def _reachable(url: str, timeout_s: float) -> bool:
    """A TCP connection to the URL's host (or the HTTPS proxy in use) opens within `timeout_s`."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    target = urlparse(proxy if proxy else url)
    host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    if not host:
        return False
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            result.append(True)
        except OSError:
            result.append(False)

    # Name resolution ignores socket timeouts; a daemon thread bounds it too.
    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout_s)
    return bool(result and result[0])


def _finish(model: PreTrainedModel, device: torch.device, fast_attention: bool) -> PreTrainedModel:
    """Eval mode on `device`; with fast_attention, our attention: the band kernel for a Longformer, the C kernel
    for a BERT-family encoder on the CPU (both exact; each falls back to transformers' where it does not apply)."""
    model.eval().to(device)
    if not fast_attention:
        return model
    if getattr(model.config, "model_type", "") == "longformer":
        from longformer_core.model.attention import use_fast_attention

        use_fast_attention(model)
    elif device.type == "cpu":
        from longformer_core.model import cpu_attention

        cpu_attention.enable(model)
    return model


def load_checkpoint(
    name_or_path: str,
    *,
    device: torch.device | None = None,
    fast_attention: bool = True,
    head: str | None = None,
) -> LoadedModel:
    """Load a hub id or local checkpoint folder, with its task head when it has one.

    Args:
        name_or_path: a Hugging Face id (`allenai/longformer-base-4096`) or a local folder.
        device: where to run; default CUDA if available else CPU.
        fast_attention: our attention kernels (inference only; see `_finish`).
        head: force "none" | "qa" | "classification"; default: what the checkpoint's config says.
    Returns:
        the LoadedModel.
    Raises:
        ModelLoadError: unknown id, offline machine, or a folder that is not a model.
    """
    quiet_transformers()
    device = device or default_device()
    path = Path(name_or_path).expanduser()
    looks_like_path = path.exists() or name_or_path.startswith((".", "/", "~"))
    if looks_like_path and not (path / "config.json").is_file():
        raise ModelLoadError(
            f"'{name_or_path}' is not a model folder (no config.json inside). Give the folder that "
            "`save_pretrained` wrote, or a Hugging Face id."
        )
    # A hub id on a machine without network: only the local cache, so a miss fails at once.
    offline = not looks_like_path and _hub_offline()
    local = {"local_files_only": True} if offline else {}
    try:
        config = AutoConfig.from_pretrained(str(path) if looks_like_path else name_or_path, **local)
        head = head or _head_of(config)
        auto = {"qa": AutoModelForQuestionAnswering, "classification": AutoModelForSequenceClassification}
        source = str(path) if looks_like_path else name_or_path
        model = auto.get(head, AutoModel).from_pretrained(source, **local)
        tokenizer = AutoTokenizer.from_pretrained(source, **local)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"Could not load model '{name_or_path}'. It is not a local model folder, and it is not in the "
            "local Hugging Face cache (this machine cannot download models). On a connected machine run "
            f"`huggingface-cli download {name_or_path}` and copy the folder here, then give its path. "
            f"(Details: {exc.__class__.__name__}: {str(exc)[:200]})"
        ) from exc
    labels = []
    if head == "classification":
        labels = [config.id2label[i] for i in sorted(config.id2label)]
    return LoadedModel(
        name=name_or_path,
        model=_finish(model, device, fast_attention),
        tokenizer=tokenizer,
        max_tokens=_positions_of(config),
        is_longformer=config.model_type in LONG_MODEL_TYPES,
        head=head,
        labels=labels,
        device=device,
        dtype=compute_dtype(device),
    )


def embedded_qa_head() -> Path | None:
    """The QA head the embedded default uses: $LONGDOC_QA_HEAD (a folder, or "none"), else the shipped one."""
    chosen = settings.value("LONGDOC_QA_HEAD")
    if chosen.lower() == "none":
        return None
    path = Path(chosen).expanduser() if chosen else QA_HEAD_DIR
    return path if (path / "adapter.safetensors").is_file() else None


def embedded_long_head() -> Path | None:
    """The long reader the embedded Longformer uses: $LONGDOC_LONG_HEAD (a folder, or "none"), else the shipped
    one (assets/long_head) when there is one; None: the Longformer reads short regions with the QA head."""
    chosen = settings.value("LONGDOC_LONG_HEAD")
    if chosen.lower() == "none":
        return None
    path = Path(chosen).expanduser() if chosen else LONG_HEAD_DIR
    return path if (path / "adapter.safetensors").is_file() else None


def load_span_model(
    source: str | Path, head_dir: Path, device: torch.device, fast_attention: bool
) -> PreTrainedModel:
    """A QA model of `source` (the converted Longformer or MiniLM) with a LoRA QA head merged into its weights.

    The head is what `python -m longformer_core finetune --task qa --model embedded` saves (or one of its
    training checkpoints: `model.qa_head.read_qa_head`): LoRA deltas (merged here, the Longformer's global
    projections included) and the span layer.
    """
    from longformer_core.model.lora import merge_adapter
    from longformer_core.model.qa_head import read_qa_head

    head = read_qa_head(head_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(str(source))
    merge_adapter(model, head.adapter, head.lora)
    with torch.no_grad():
        model.qa_outputs.weight.copy_(head.state["qa_outputs.weight"])
        model.qa_outputs.bias.copy_(head.state["qa_outputs.bias"])
    return _finish(model, device, fast_attention)


def _use_long_reader(lf: LoadedModel, source: Path, head_dir: Path, fast_attention: bool) -> bool:
    """Give the embedded Longformer the long reader in `head_dir` (span model + answer-type classifier); False
    when the head does not load (the Longformer then reads short regions with the QA head)."""
    from longformer_core.model.qa_head import load_answer_type_head, read_qa_head

    try:
        span_model = load_span_model(source, head_dir, lf.device, fast_attention)
        answer_type = load_answer_type_head(head_dir, lf.encoder.config.hidden_size)
        lf.reader_globals = str(read_qa_head(head_dir).card.get("doc_global", "question"))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        log.warning(
            "Long reader %s not loaded (%s); the Longformer reads short regions instead", head_dir, exc
        )
        return False
    lf.span_model, lf.long_reader = span_model, True
    lf.answer_type = None if answer_type is None else answer_type.to(lf.device)
    return True


def load_embedded(
    *,
    device: torch.device | None = None,
    fast_attention: bool = True,
    conversion: ConversionConfig | None = None,
    qa_head: Path | None | str = "default",
) -> ModelPair:
    """The offline default: MiniLM converted to a Longformer (cached on disk) and MiniLM itself as baseline.

    qa_head: folder of a trained QA head ("default": `embedded_qa_head()`; None: no head, so QA picks
        answer sentences). With a head, both models get a `span_model` that extracts answer spans.
    """
    quiet_transformers()
    device = device or default_device()
    conversion = conversion or ConversionConfig()
    long_dir = embedded_longformer_dir(conversion)
    from transformers import LongformerModel

    longformer = LongformerModel.from_pretrained(long_dir, add_pooling_layer=False)
    tokenizer = AutoTokenizer.from_pretrained(long_dir)
    source = embedded_source_dir()
    baseline = AutoModel.from_pretrained(source, add_pooling_layer=False)
    lf = LoadedModel(
        name=EMBEDDED,
        model=_finish(longformer, device, fast_attention),
        tokenizer=tokenizer,
        max_tokens=conversion.max_positions,
        is_longformer=True,
        device=device,
        dtype=compute_dtype(device),
    )
    base = LoadedModel(
        name="MiniLM-L6 (512 tokens)",
        model=_finish(baseline, device, fast_attention),
        tokenizer=AutoTokenizer.from_pretrained(source),
        max_tokens=BASELINE_TOKENS,
        is_longformer=False,
        device=device,
        dtype=compute_dtype(device),
    )
    head = embedded_qa_head() if qa_head == "default" else (Path(qa_head) if qa_head else None)
    if head is not None:
        try:
            base.span_model = load_span_model(source, head, device, fast_attention)
            long_head = embedded_long_head()
            if long_head is None or not _use_long_reader(lf, long_dir, long_head, fast_attention):
                lf.span_model = load_span_model(long_dir, head, device, fast_attention)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:  # a damaged head must not stop the app
            log.warning("QA head %s not loaded (%s); questions get answer sentences instead", head, exc)
            lf.span_model = base.span_model = None
            lf.long_reader, lf.answer_type, lf.reader_globals = False, None, "question"
    return ModelPair(longformer=lf, baseline=base, name="Embedded MiniLM-Longformer (offline)")


def load_models(
    name_or_path: str = EMBEDDED,
    baseline: str | None = None,
    *,
    device: torch.device | None = None,
    fast_attention: bool = True,
) -> ModelPair:
    """Load the Longformer to explore and its 512-token baseline.

    Args:
        name_or_path: "embedded" (default, offline), a hub id or a local folder of a Longformer checkpoint.
        baseline: a RoBERTa/BERT-style id or folder to use as the 512-token baseline; default: the known
            partner of the checkpoint if it is available locally, else the same weights limited to 512 tokens.
        device: where to run.
        fast_attention: use longformer_core.model.attention instead of HF's attention (same results, faster).
    Returns:
        ModelPair(longformer, baseline).
    Raises:
        ModelLoadError: with a message that says what to do.
    """
    if name_or_path in (EMBEDDED, "", None):
        return load_embedded(device=device, fast_attention=fast_attention)
    long = load_checkpoint(name_or_path, device=device, fast_attention=fast_attention)
    if not long.is_longformer:
        raise ModelLoadError(
            f"'{name_or_path}' is a {long.model.config.model_type} model that reads at most {long.max_tokens} "
            "tokens. Choose a Longformer checkpoint (e.g. allenai/longformer-base-4096) as the main model and "
            "give this one as the baseline."
        )
    if baseline is None and name_or_path in KNOWN_BASELINES:
        try:
            base = load_checkpoint(KNOWN_BASELINES[name_or_path], device=device, head=long.head)
        except ModelLoadError:
            log.info(
                "known baseline %s not available; using truncated Longformer", KNOWN_BASELINES[name_or_path]
            )
            base = long.limited_to(BASELINE_TOKENS)
    elif baseline:
        base = load_checkpoint(baseline, device=device)
        base.max_tokens = min(base.max_tokens, BASELINE_TOKENS)
    else:
        base = long.limited_to(BASELINE_TOKENS)
    return ModelPair(longformer=long, baseline=base, name=name_or_path)
