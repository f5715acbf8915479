"""The category model on generated data, without a database."""

import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from labeling.models import TRAINING_WEIGHTS
from labeling.synthetic.generate import GenerationParams, generate
from mlcore import metrics
from mlcore.features.compute import compute_features
from mlcore.modeling import CategoryModel, _vectorize_one


@pytest.fixture(scope="module")
def rows():
    """One household's year and a half, every row labeled, as model rows."""
    generated = list(
        generate(GenerationParams(count=2_500, months=18, seed=3, label_fraction=1))
    )
    frame = pl.DataFrame(
        {
            "id": range(1, len(generated) + 1),
            "account": [t.account for t in generated],
            "posted_on": [t.posted_on for t in generated],
            "description": [t.description for t in generated],
            "amount_cents": [round(float(t.amount) * 100) for t in generated],
            "label": [t.label for t in generated],
            "truth": [t.category for t in generated],
            "weight": [TRAINING_WEIGHTS[t.source] for t in generated],
        }
    )
    features = compute_features(frame).rename({"txn_id": "id"})
    return (
        frame.select("id", "posted_on", "label", "truth", "weight")
        .join(features.select(pl.exclude("posted_on")), on="id")
        .with_columns(seq=pl.col("id"), amount_cents=pl.col("amount").cast(pl.Int64))
    )


@pytest.fixture(scope="module")
def split(rows):
    cutoff = pl.date(2026, 8, 1)
    train = rows.filter(pl.col("posted_on") < cutoff)
    test = rows.filter(pl.col("posted_on") >= cutoff)
    return train, test, CategoryModel().fit(train)


def test_held_out_months_are_predicted_well_and_calibrated(split):
    train, test, model = split

    probabilities = model.predict_proba(test.drop("label", "weight"), history=train)
    predicted = model.classes_[probabilities.argmax(axis=1)]
    confidence = probabilities.max(axis=1)
    truth = test["truth"].to_numpy()

    assert metrics.accuracy(truth, predicted) > 0.9
    assert metrics.calibration_error(truth, predicted, confidence) < 0.08
    assert model.temperature != 1.0
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_one_row_at_a_time_gives_the_batch_answer(split):
    train, test, model = split
    sample = test.head(40).drop("label", "weight")

    batch = model.predict_proba(sample, history=train)
    single = np.vstack(
        [model.predict_proba(sample[i : i + 1], history=train) for i in range(40)]
    )

    np.testing.assert_allclose(single, batch, atol=1e-5)


def test_text_blocks_made_apart_from_the_prior_give_the_same_answer(split):
    # Serving vectorizes a batch's text while the database reads its history.
    train, test, model = split
    sample = test.head(100).drop("label", "weight")
    text = model.text_blocks(sample)

    apart = model.predict_proba(sample, history=train, text=text)
    # The blocks handed in are the ones used: those of other rows mislead.
    mismatched = model.predict_proba(sample.reverse(), history=train, text=text)

    np.testing.assert_allclose(apart, model.predict_proba(sample, history=train))
    assert not np.allclose(mismatched, apart[::-1])


def test_a_rows_own_label_in_the_history_is_not_its_evidence(split):
    train, _, model = split
    row = train.tail(1)
    flipped = row.with_columns(
        label=pl.lit(next(c for c in model.classes_ if c != row["label"][0]))
    )

    without = model.predict_proba(row.drop("label", "weight"), history=train[:-1])
    with_own = model.predict_proba(
        row.drop("label", "weight"), history=pl.concat([train[:-1], flipped])
    )

    np.testing.assert_allclose(with_own, without)


@pytest.mark.parametrize(
    "vectorizer",
    [
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        TfidfVectorizer(analyzer=str.split, sublinear_tf=True),
        CountVectorizer(analyzer=str.split, binary=True),
    ],
)
def test_the_small_batch_path_matches_scikit_learn(vectorizer):
    vectorizer.fit(["starbucks seattle", "amzn mktp us", "shell oil", "starbucks"])
    texts = ["starbucks starbucks coffee", "unknown words", "shell oil shell", ""]

    ours = np.zeros((len(texts), len(vectorizer.vocabulary_)))
    for row, text in enumerate(texts):
        columns, values = _vectorize_one(vectorizer.build_analyzer(), vectorizer, text)
        ours[row, columns] = values

    np.testing.assert_allclose(ours, vectorizer.transform(texts).toarray(), atol=1e-6)


def test_what_serving_caches_is_not_saved_with_the_model(split):
    train, test, model = split
    row = test.head(1).drop("label", "weight")
    answer = model.predict_proba(row, history=train)  # fills the caches

    loaded = pickle.loads(pickle.dumps(model))  # noqa: S301 (our own bytes)

    assert not {"weights_", "analyzers_", "vectors_"} & set(vars(loaded))
    np.testing.assert_allclose(loaded.predict_proba(row, history=train), answer)
