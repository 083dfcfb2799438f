"""Fine-tuning: `finetune` (QA and classification with transformers.Trainer), its `data` and `trainer`
(resumable checkpoints), and the long-context readers: `long` (the loop and the command), `long_data`,
`long_model`.

Every public name is importable from this package (loaded on first use: `lazy_exports`).
"""

from longformer_core.lazy_exports import lazy_exports

_EXPORTS = {
    "build_windows": "long",
    "CHUNK_TOKENS": "long",
    "chunk_windows": "long",
    "classification_scores": "finetune",
    "cpu_model_name": "long",
    "distributed_rank": "finetune",
    "EMBEDDED": "finetune",
    "EMBEDDED_QA_TOKENS": "finetune",
    "FeatureDataset": "data",
    "finetune_classifier": "finetune",
    "finetune_long": "long",
    "finetune_qa": "finetune",
    "finish_distributed": "finetune",
    "hotpot_train_examples": "long",
    "init_from_head": "long",
    "is_main_process": "finetune",
    "latest_checkpoint": "finetune",
    "load_squad_examples": "data",
    "LongExample": "long",
    "LongTrainSettings": "long",
    "MODEL_KEYS": "data",
    "native_bf16": "long",
    "pad_id": "data",
    "PadCollator": "data",
    "predict_qa": "finetune",
    "qa_features": "data",
    "QA_HEAD_FILES": "finetune",
    "qa_training_model": "finetune",
    "QAExample": "data",
    "read_labelled_csv": "data",
    "reader_for_training": "long",
    "reader_loss": "long",
    "run_trainer": "finetune",
    "save_head": "long",
    "save_qa_head": "finetune",
    "split_titles": "data",
    "squad_article_examples": "long",
    "squad_scores": "finetune",
    "sweep": "finetune",
    "train": "long",
    "TrainLog": "long",
    "TrainSettings": "finetune",
    "TrainWindow": "long",
    "use_bf16": "trainer",
    "weights_digest": "finetune",
    "WINDOW_TOKENS": "long",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
