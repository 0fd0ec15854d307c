"""A word-level tokenizer trained on the reports passed to ``fit``, with the ``tokenizers`` library.

Radiology reports use a small, repetitive vocabulary: whole words keep sequences short (fast
generation) and make each decoder position one word, so token-level attention maps onto words.
The trained tokenizer is stored with the fitted model, because the trainer breaks frequency
ties differently between runs.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["train_report_tokenizer", "PAD", "EOS", "UNK"]

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


def train_report_tokenizer(reports: Sequence[str], *, vocab_size: int = 4000,
                           min_frequency: int = 1):
    """Train a lowercase word-level tokenizer on ``reports``.

    Parameters
    ----------
    reports : sequence of str
        Training text.
    vocab_size : int, default=4000
        Largest vocabulary, special tokens included.
    min_frequency : int, default=1
        Words seen fewer times map to ``<unk>``.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        Pads with ``<pad>`` (id 0), ends each sequence with ``</s>`` (id 1), and decodes
        without spaces before punctuation.

    Examples
    --------
    >>> tok = train_report_tokenizer(["No focal consolidation.", "Right lower lobe opacity."])
    >>> tok("no consolidation.")["input_ids"][-1] == tok.eos_token_id
    True
    >>> tok.decode(tok("Right lower lobe opacity.")["input_ids"], skip_special_tokens=True)
    'right lower lobe opacity.'
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    trainer = WordLevelTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, EOS, UNK]
    )
    tok.train_from_iterator(list(reports), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, tok.token_to_id(EOS))]
    )
    # WordPiece's decoder with cleanup joins words with spaces and removes the space before
    # punctuation; word-level tokens carry no "##" prefix, so nothing else changes.
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK
    )
