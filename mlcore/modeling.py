"""The category model: features to calibrated category probabilities.

``CategoryModel`` turns point-in-time rows (see ``ROW_SCHEMA``) into a
sparse design matrix and fits a linear support vector machine on it (one
class against the rest), strongly regularized, since a household's history
holds few labels per category:

- character n-grams of the canonical merchant key, which survive the
  spelling differences between banks;
- the description's word tokens, and their character n-grams, which keep
  what normalizing the merchant strips (``ACH``, ``PPD``, a payee's name);
- attribute tokens: account, sign, amount band, day of month, weekday,
  subscription, history length, and the merchant crossed with sign and
  amount band (one shop can be two categories by amount);
- the merchant's label prior (``mlcore.priors``): the share of each
  category among the merchant's earlier labels, in a separate block per
  amount of evidence so that the model learns how far to trust one label
  against fifty, and the most recent earlier label.

The machine's margins become calibrated probabilities through a softmax
whose temperature is fit on out-of-fold margins over contiguous time blocks
of the training rows, so it reflects how sure the model should be about
rows it has not seen; the final model is then refit on every row.
"""

import bisect
import math

import numpy as np
import polars as pl
from scipy import optimize, sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import SGDClassifier

from mlcore.priors import PRIOR_WINDOW, merchant_priors

# Columns a row needs, for training and for prediction alike. ``label`` and
# ``weight`` are only read from training rows and from label history.
ROW_SCHEMA = {
    "seq": pl.Int64,
    "posted_on": pl.Date,
    "account": pl.Utf8,
    "merchant": pl.Utf8,
    "tokens": pl.List(pl.Utf8),
    "amount_cents": pl.Int64,
    "is_subscription": pl.Boolean,
    "merchant_prior_count": pl.Int32,
    "days_since_prev_merchant": pl.Int32,
    "amount_deviation": pl.Float64,
}

# Upper bounds of the evidence bands of the prior, in summed label weight
# (a human label weighs 3, a rule label 1, an imported one 0.5).
EVIDENCE_BANDS = (1.5, 4.0, 10.0, math.inf)

CALIBRATION_FOLDS = 3

# Attributes that serving derives from a fitted model when first needed: a
# row-major copy of the weights, the vectorizers' analyzers and the vectors
# of texts seen. Never saved with the model.
SERVING_CACHES = ("weights_", "analyzers_", "vectors_")
# Texts whose vectors a process keeps; the cache empties when full.
VECTOR_CACHE_SIZE = 20_000


class CategoryModel:
    """Linear SVM over merchant, text, amount and prior, with calibrated
    probabilities."""

    # Chosen on bench_quality's generated households and the public sample
    # (see docs/models.md): weaker regularization lost accuracy everywhere.
    def __init__(self, c=0.1, max_iter=50, calibration_folds=CALIBRATION_FOLDS):
        self.c = c
        self.max_iter = max_iter
        self.calibration_folds = calibration_folds
        self.prior_window = PRIOR_WINDOW
        self.temperature = 1.0

    def describe(self):
        """Parameters and fitted sizes, for the training run's record."""
        return {
            "name": type(self).__name__,
            "c": self.c,
            "max_iter": self.max_iter,
            "calibration_folds": self.calibration_folds,
            "prior_window": self.prior_window,
            "temperature": round(self.temperature, 4),
            "classes": len(getattr(self, "classes_", [])),
            "features": int(self.classifier_.coef_.shape[1])
            if hasattr(self, "classifier_")
            else None,
        }

    # -- training ---------------------------------------------------------

    def fit(self, rows):
        """Fit on labeled ``rows`` (``ROW_SCHEMA`` plus ``label``, ``weight``).

        Each row's prior comes from the rows before it, so the model learns
        from the same kind of evidence it will have when serving.
        """
        rows = rows.sort("posted_on", "seq")
        self.classes_ = np.array(sorted(rows["label"].unique().to_list()))
        y = np.searchsorted(self.classes_, rows["label"].to_numpy())
        weights = rows["weight"].to_numpy().astype(np.float64)
        counts, last = merchant_priors(rows, self.classes_, self.prior_window)

        self._fit_vectorizers(rows)
        design = self._design(rows, counts, last)
        self.temperature = self._fit_temperature(design, y, weights)
        self.classifier_ = self._classifier(len(y)).fit(
            design, y, sample_weight=weights
        )
        for name in SERVING_CACHES:  # a refit invalidates them
            self.__dict__.pop(name, None)
        return self

    def __getstate__(self):
        # What serving derives from the fitted model is rebuilt after loading.
        state = self.__dict__.copy()
        for name in SERVING_CACHES:
            state.pop(name, None)
        return state

    def _classifier(self, n_rows):
        """A linear SVM (hinge loss, one class against the rest) fit by
        stochastic gradient descent, which takes seconds at 100,000 rows
        where liblinear takes a minute. ``alpha`` makes the objective that
        of an SVM with penalty ``c`` at any number of rows. The classes are
        fit in parallel on every core; each one's seed is drawn first, so the
        model does not depend on the number of cores."""
        return SGDClassifier(
            loss="hinge",
            alpha=1.0 / (self.c * n_rows),
            max_iter=self.max_iter,
            tol=1e-3,
            n_jobs=-1,
            random_state=0,
        )

    def _fit_temperature(self, design, y, weights):
        """Fit the softmax temperature on out-of-fold logits of time blocks."""
        folds = np.array_split(np.arange(design.shape[0]), self.calibration_folds)
        logits, truth = [], []
        for held_out in folds:
            train = np.setdiff1d(np.arange(design.shape[0]), held_out)
            if len(held_out) == 0 or len(np.unique(y[train])) < 2:
                continue
            classifier = self._classifier(len(train)).fit(
                design[train], y[train], sample_weight=weights[train]
            )
            # A class the fold never saw cannot be predicted at any
            # temperature; its rows would only drag the fit to flat output.
            known = np.isin(y[held_out], classifier.classes_)
            logits.append(self._full_logits(classifier, design[held_out[known]]))
            truth.append(y[held_out[known]])
        if not logits:
            return 1.0
        logits, truth = np.vstack(logits), np.concatenate(truth)

        def loss(log_t):
            scaled = logits / math.exp(log_t)
            scaled -= scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            return float(np.mean(log_norm - scaled[np.arange(len(truth)), truth]))

        result = optimize.minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded")
        return math.exp(result.x)

    def _full_logits(self, classifier, design):
        """Logits over every class, the classes a fold never saw at -inf."""
        logits = np.full((design.shape[0], len(self.classes_)), -np.inf)
        scores = classifier.decision_function(design)
        if scores.ndim == 1:  # two classes: sklearn returns one margin
            scores = np.column_stack([-scores / 2, scores / 2])
        logits[:, classifier.classes_] = scores
        return np.where(np.isfinite(logits), logits, -1e9)

    # -- prediction -------------------------------------------------------

    def predict_proba(self, rows, history=None, text=None):
        """Calibrated class probabilities of ``rows`` (columns: ``classes_``).

        ``history`` holds labeled rows (``label``, ``weight``) that the
        priors may draw on; only those dated before a row count for it.
        ``text`` is ``text_blocks(rows)`` when the caller has it already.
        """
        if len(rows) == 0:
            return np.zeros((0, len(self.classes_)))
        if len(rows) <= SMALL_BATCH:
            counts, last = _priors_small(
                rows, history, self.classes_, self.prior_window
            )
            return _softmax(self._logits(self._design(rows, counts, last)))
        query = rows.select(
            pl.col("merchant").cast(pl.Utf8),
            pl.col("posted_on").cast(pl.Date),
            pl.col("seq").cast(pl.Int64),
            label=pl.lit(None, pl.Utf8),
            weight=pl.lit(0.0),
        )
        if history is not None and len(history):
            # A row whose label is in the history is read there, in its own
            # place: a label counts for the rows after it, never for its own.
            past = history.select(PRIOR_COLUMNS)
            query = pl.concat(
                [past, query.filter(~pl.col("seq").is_in(past["seq"].implode()))],
                how="vertical_relaxed",
            )
        counts, last = merchant_priors(query, self.classes_, self.prior_window)
        place = dict(zip(query["seq"].to_list(), range(len(query)), strict=True))
        mine = [place[seq] for seq in rows["seq"].to_list()]
        design = self._design(rows, counts[mine], last[mine], text)
        return _softmax(self._logits(design))

    def _logits(self, design):
        """Temperature-scaled class scores: the linear model, without
        scikit-learn's per-call input checks (the design is ours)."""
        # scipy copies a transposed (column-major) right operand on every
        # product; a row-major copy made once saves that per request.
        weights = getattr(self, "weights_", None)
        if weights is None:
            weights = self.weights_ = np.ascontiguousarray(self.classifier_.coef_.T)
        scores = np.asarray(design @ weights) + self.classifier_.intercept_
        if weights.shape[1] == 1:  # two classes: one margin
            scores = np.column_stack([-scores[:, 0] / 2, scores[:, 0] / 2])
        return scores / self.temperature

    # -- design matrix ----------------------------------------------------

    def _fit_vectorizers(self, rows):
        self.merchant_vectorizer_ = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 5),
            sublinear_tf=True,
            dtype=np.float32,
        )
        self.word_vectorizer_ = TfidfVectorizer(
            analyzer=str.split,
            sublinear_tf=True,
            dtype=np.float32,
        )
        self.text_vectorizer_ = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 4),
            sublinear_tf=True,
            dtype=np.float32,
        )
        self.attribute_vectorizer_ = CountVectorizer(
            analyzer=str.split, binary=True, dtype=np.float32
        )
        texts = _texts(rows)
        for vectorizer, column in self._vectorizers():
            vectorizer.fit(sorted(set(texts[column])))

    def _vectorizers(self):
        """The text vectorizers, in the order of their design columns, with
        the text each one reads."""
        return (
            (self.merchant_vectorizer_, "merchant_text"),
            (self.word_vectorizer_, "words"),
            (self.text_vectorizer_, "words"),
            (self.attribute_vectorizer_, "attributes"),
        )

    def text_blocks(self, rows):
        """The design columns of ``rows`` that no label history informs
        (all but the prior), as one sparse block per vectorizer."""
        texts = _texts(rows)
        return [
            _transform_unique(vectorizer, texts[column])
            for vectorizer, column in self._vectorizers()
        ]

    def _design(self, rows, counts, last, text=None):
        if len(rows) <= SMALL_BATCH:
            return self._design_small(_texts(rows), counts, last)
        blocks = [
            *(self.text_blocks(rows) if text is None else text),
            _prior_block(counts, last, len(self.classes_)),
        ]
        return sparse.hstack(blocks, format="csr", dtype=np.float32)

    def _design_small(self, texts, counts, last):
        """What ``_design`` returns, built row by row in plain Python: for a
        few rows, scikit-learn's input checks and scipy's block stacking
        cost more than the work."""
        analyzers = getattr(self, "analyzers_", None)
        if analyzers is None:  # built once per loaded model
            analyzers = self.analyzers_ = [
                (vectorizer.build_analyzer(), vectorizer, column)
                for vectorizer, column in self._vectorizers()
            ]
        # Merchants and their texts repeat from request to request: each
        # text is vectorized once per process (up to a bound).
        vectors = self.__dict__.setdefault("vectors_", {})
        n_classes = len(self.classes_)
        indptr, indices, values = [0], [], []
        for row in range(len(counts)):
            offset = 0
            for position, (analyze, vectorizer, column) in enumerate(analyzers):
                key = (position, texts[column][row])
                found = vectors.get(key)
                if found is None:
                    columns, weights = _vectorize_one(analyze, vectorizer, key[1])
                    if len(vectors) >= VECTOR_CACHE_SIZE:
                        vectors.clear()
                    found = vectors[key] = ([offset + c for c in columns], weights)
                indices += found[0]
                values += found[1]
                offset += len(vectorizer.vocabulary_)
            total = float(counts[row].sum())
            if total > 0:
                band = bisect.bisect_left(EVIDENCE_BANDS, total)
                for k in np.flatnonzero(counts[row]):
                    indices.append(offset + band * n_classes + int(k))
                    values.append(float(counts[row, k]) / total)
            if last[row] >= 0:
                indices.append(offset + len(EVIDENCE_BANDS) * n_classes + last[row])
                values.append(1.0)
            indptr.append(len(indices))
        width = offset + (len(EVIDENCE_BANDS) + 1) * n_classes
        return sparse.csr_matrix(
            (np.array(values, dtype=np.float32), indices, indptr),
            shape=(len(counts), width),
        )


# Columns the prior needs from history and query rows alike.
PRIOR_COLUMNS = ["merchant", "posted_on", "seq", "label", "weight"]


def _texts(rows):
    """The three text inputs of the vectorizers, one string per row.

    Plain Python over column lists: for the few rows of a suggestion
    request this is far cheaper than building a dataframe query.
    """
    columns = {
        name: rows[name].cast(dtype).to_list() for name, dtype in ROW_SCHEMA.items()
    }
    merchant_text, words, attributes = [], [], []
    for (
        _seq,
        posted_on,
        account,
        merchant,
        tokens,
        cents,
        subscription,
        seen,
        gap,
        deviation,
    ) in zip(*columns.values(), strict=True):
        merchant = merchant or ""
        sign = "in" if cents > 0 else "out"
        band = _log2_band(abs(cents) / 100)
        key = merchant.replace(" ", "_")
        merchant_text.append(merchant)
        words.append(" ".join(tokens or ()))
        attributes.append(
            f"acct:{(account or '').replace(' ', '_')} sign:{sign} "
            f"amt:{sign}_{band} round:{int(cents % 100 == 0)} "
            f"dom:{posted_on.day // 5} dow:{posted_on.weekday()} "
            f"sub:{int(bool(subscription))} seen:{_log2_band(seen or 0)} "
            f"gap:{'none' if gap is None else _log2_band(gap)} "
            f"dev:{'none' if deviation is None else _deviation_band(deviation)} "
            f"ms:{key}|{sign} ma:{key}|{sign}_{band}"
        )
    return {"merchant_text": merchant_text, "words": words, "attributes": attributes}


def _log2_band(value):
    return int(math.log2(value + 1))


def _deviation_band(deviation):
    return round(min(max(deviation, -1.0), 3.0) * 4)


def _transform_unique(vectorizer, texts):
    """Vectorize each distinct string once and gather rows by index."""
    distinct, inverse = np.unique(np.array(texts, dtype=object), return_inverse=True)
    return vectorizer.transform(distinct.tolist())[inverse]


# Up to this many rows, predictions are computed in plain Python: for the
# few rows of a suggestion request, dataframe queries and scikit-learn's
# input checks cost more than the work itself.
SMALL_BATCH = 32


def _vectorize_one(analyze, vectorizer, text):
    """The sorted columns and values of ``text`` in ``vectorizer``'s space.

    Covers the two kinds used here: TF-IDF with sublinear term frequency and
    L2 norm, and binary counts.
    """
    vocabulary = vectorizer.vocabulary_
    counts = {}
    for feature in analyze(text):
        column = vocabulary.get(feature)
        if column is not None:
            counts[column] = counts.get(column, 0) + 1
    columns = sorted(counts)
    idf = getattr(vectorizer, "idf_", None)
    if idf is None:
        return columns, [1.0] * len(columns)
    row = [(1.0 + math.log(counts[c])) * idf[c] for c in columns]
    norm = math.sqrt(sum(v * v for v in row))
    return columns, [v / norm for v in row] if norm else row


def _priors_small(rows, history, classes, window):
    """What ``merchant_priors`` gives the rows of ``rows`` with ``history``
    before them, in plain Python for a few rows.

    As there, only labels strictly before a row count for it (so never its
    own), and neither labels outside ``classes`` nor rows without a
    merchant count.
    """
    code = {name: k for k, name in enumerate(classes)}
    merchants = rows["merchant"].to_list()
    days = rows["posted_on"].to_list()
    seqs = rows["seq"].to_list()
    earlier = {}
    if history is not None and len(history):
        for merchant, day, seq, label, weight in zip(
            *(history[name].to_list() for name in PRIOR_COLUMNS), strict=True
        ):
            if merchant and label in code:
                earlier.setdefault(merchant, []).append(
                    (day, seq, code[label], weight or 0.0)
                )
    for labels in earlier.values():
        labels.sort()

    counts = np.zeros((len(rows), len(classes)), dtype=np.float32)
    last = np.full(len(rows), -1, dtype=np.int32)
    for row, (merchant, day, seq) in enumerate(zip(merchants, days, seqs, strict=True)):
        labels = earlier.get(merchant) if merchant else None
        if not labels:
            continue
        end = bisect.bisect_left(labels, (day, seq))  # strictly before the row
        for _day, _seq, k, weight in labels[max(0, end - window) : end]:
            counts[row, k] += weight
        if end:
            last[row] = labels[end - 1][2]
    return counts, last


def _prior_block(counts, last, n_classes):
    """Class-aligned prior columns: share per evidence band, then last label."""
    total = counts.sum(axis=1)
    share = np.divide(
        counts, total[:, None], out=np.zeros_like(counts), where=total[:, None] > 0
    )
    band = np.searchsorted(EVIDENCE_BANDS, total, side="left")
    rows, cols = np.nonzero(share)
    values = share[rows, cols]
    cols = cols + band[rows] * n_classes
    seen = last >= 0
    last_rows = np.nonzero(seen)[0]
    last_cols = len(EVIDENCE_BANDS) * n_classes + last[seen]
    return sparse.csr_matrix(
        (
            np.concatenate([values, np.ones(len(last_rows), dtype=np.float32)]),
            (np.concatenate([rows, last_rows]), np.concatenate([cols, last_cols])),
        ),
        shape=(len(counts), (len(EVIDENCE_BANDS) + 1) * n_classes),
        dtype=np.float32,
    )


def _softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
