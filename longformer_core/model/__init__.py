"""The models: the registry and loading (`registry`), the paper's §5 conversion (`convert`), the fast
sliding-window + global attention (`attention` for inference, `grad_attention` for passes with gradients) and
LoRA adapters (`lora`).

Every public name is importable from this package (loaded on first use: `lazy_exports`).
"""

from longformer_core.lazy_exports import lazy_exports

_EXPORTS = {
    "_POOL": "attention",
    "adapter_state": "lora",
    "add_lora": "lora",
    "autograd_attention": "grad_attention",
    "band_attention_probs": "attention",
    "BASELINE_TOKENS": "registry",
    "blocked_window_attention": "grad_attention",
    "cache_root": "convert",
    "compute_dtype": "registry",
    "ConversionConfig": "convert",
    "convert_encoder": "convert",
    "CPU_BF16_FLAGS": "registry",
    "cpu_has_native_bf16": "registry",
    "DEFAULT_BLOCK": "attention",
    "default_device": "registry",
    "DEFAULT_TARGETS": "lora",
    "DTYPE_CHOICES": "registry",
    "DTYPE_ENV": "registry",
    "EMBEDDED": "registry",
    "embedded_longformer_dir": "convert",
    "embedded_qa_head": "registry",
    "embedded_source_dir": "convert",
    "fast_attention_layers": "attention",
    "FastLongformerSelfAttention": "attention",
    "GRAD_BLOCK": "grad_attention",
    "hf_layer_inputs": "attention",
    "HUB_PROBE_TIMEOUT_S": "registry",
    "inference_autocast": "registry",
    "KNOWN_BASELINES": "registry",
    "load_checkpoint": "registry",
    "load_embedded": "registry",
    "load_models": "registry",
    "load_span_model": "registry",
    "LoadedModel": "registry",
    "LONG_MODEL_TYPES": "registry",
    "LoraConfig": "lora",
    "LoRALinear": "lora",
    "merge_adapter": "lora",
    "ModelLoadError": "registry",
    "ModelPair": "registry",
    "QA_HEAD_DIR": "registry",
    "quiet_transformers": "convert",
    "RECIPE_VERSION": "convert",
    "sliding_window_attention": "attention",
    "TIED_GLOBAL": "lora",
    "tile_position_embeddings": "convert",
    "use_fast_attention": "attention",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
