"""The lexical encoder: TF-IDF over word unigrams and bigrams (sublinear term frequency)
reduced by truncated SVD to ``n_components`` dimensions, rows L2-normalised, float32.

It has to be fitted, and only on training prompts: ``embed_task`` calls ``fit`` with the
task's training texts before embedding any split (the optional ``fit`` of the
``Encoder`` protocol). The fitted copy's identity carries a hash of those texts, so the
embedding cache never serves vectors of another fit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from routeharness import RouteHarnessError

DEFAULT_COMPONENTS = 256
#: the SVD's random state: the same training texts give the same encoder
SEED = 0


def from_spec(arg: str | None = None) -> LexicalEncoder:
    """``lexical`` or ``lexical:N`` (N >= 2 components)."""
    if arg is None:
        return LexicalEncoder()
    try:
        n = int(arg)
    except ValueError:
        n = 0
    if n < 2:
        raise RouteHarnessError(f"encoder 'lexical:{arg}': N must be an integer >= 2 "
                                "(SVD components)")
    return LexicalEncoder(n)


class LexicalEncoder:
    """TF-IDF + truncated SVD. Unfitted until ``fit``; ``encode`` before it is an error."""

    name = "lexical"
    modalities = frozenset({"text"})

    def __init__(self, n_components: int = DEFAULT_COMPONENTS):
        self.n_components = n_components
        self.revision = _versions()
        self.identity = f"lexical-tfidf-svd{n_components}"
        self.dimension: int | None = None
        self._vectorizer: Any = None
        self._svd: Any = None

    def fit(self, texts: Sequence[str]) -> LexicalEncoder:
        """A fitted copy: vocabulary, IDF and SVD from ``texts`` alone."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = list(texts)
        if not texts:
            raise RouteHarnessError("encoder 'lexical' needs training prompts to fit on")
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                     dtype=np.float32)
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError as exc:  # an empty vocabulary: no word in any prompt
            raise RouteHarnessError(f"encoder 'lexical' cannot fit: {exc}") from None
        n = max(1, min(self.n_components, matrix.shape[1] - 1, matrix.shape[0] - 1))
        svd = TruncatedSVD(n_components=n, random_state=SEED, algorithm="randomized")
        svd.fit(matrix)
        fitted = LexicalEncoder(self.n_components)
        fitted._vectorizer, fitted._svd, fitted.dimension = vectorizer, svd, n
        digest = hashlib.sha256()
        for text in texts:
            digest.update(hashlib.sha256(text.encode("utf-8")).digest())
        fitted.identity = f"{self.identity}-fit{len(texts)}-{digest.hexdigest()[:16]}"
        return fitted

    @property
    def vocabulary(self) -> set[str]:
        """The fitted terms (empty before ``fit``)."""
        return set(self._vectorizer.vocabulary_) if self._vectorizer is not None else set()

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        if self._svd is None:
            raise RouteHarnessError("encoder 'lexical' is not fitted: it is fitted on a "
                                    "task's training prompts (embed_task does this)")
        out = self._svd.transform(self._vectorizer.transform(list(texts))).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1.0)
        if progress is not None:
            progress(len(texts))
        return out.reshape(len(texts), self.dimension)


def _versions() -> str:
    from importlib import metadata

    return f"scikit-learn-{metadata.version('scikit-learn')}"
