"""Evaluation on real data: `squad` (SQuAD articles, questions about a PDF), `paragraphs` (a QA head alone on
SQuAD paragraphs), `hotpot` (HotpotQA), `wikihop` (WikiHop candidate selection), `corpus` (labelled corpora:
Hyperpartisan, BBC).

Every public name is importable from this package (loaded on first use: `lazy_exports`).
"""

from longformer_core.lazy_exports import lazy_exports

_EXPORTS = {
    "add_arguments": "hotpot",
    "answer_hit": "squad",
    "best_pooling": "corpus",
    "bucket_name": "squad",
    "bucket_of": "squad",
    "BUCKETS": "squad",
    "build_document": "hotpot",
    "command_line": "corpus",
    "DATASETS": "corpus",
    "DatasetSpec": "corpus",
    "distance_bucket": "hotpot",
    "DISTANCE_BUCKETS": "hotpot",
    "duplicate_groups": "corpus",
    "embedded_rows": "corpus",
    "evaluate_dataset": "corpus",
    "evaluate_hotpot": "hotpot",
    "evaluate_wikihop": "wikihop",
    "exact_match": "squad",
    "f1_score": "squad",
    "held_out_titles": "paragraphs",
    "HotpotQuestion": "hotpot",
    "is_heldout": "hotpot",
    "length_buckets": "corpus",
    "lexical_pages": "squad",
    "load_dataset": "corpus",
    "load_hotpot": "hotpot",
    "load_pdf_questions": "squad",
    "load_squad_articles": "squad",
    "load_wikihop": "wikihop",
    "mention_tokens": "wikihop",
    "mentions": "wikihop",
    "METHODS": "hotpot",
    "metrics": "corpus",
    "normalize_answer": "squad",
    "one_pass_readers": "hotpot",
    "out_of_fold_predictions": "corpus",
    "paragraph_readers": "paragraphs",
    "ParagraphReader": "paragraphs",
    "pdf_questions": "squad",
    "question_of": "wikihop",
    "REPO_ROOT": "corpus",
    "run_command": "hotpot",
    "score_candidates": "wikihop",
    "score_heads": "corpus",
    "SHORT_TOKENS": "corpus",
    "squad_articles": "squad",
    "squad_paragraphs": "paragraphs",
    "summarise": "hotpot",
    "WikiHopRecord": "wikihop",
    "write_heads": "corpus",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
