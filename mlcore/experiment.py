"""How the served models fare: suggestions compared with the human labels.

A transaction can be suggested for more than once (the API, the admin and
the queue each store what they served), so a model's figures count each
transaction once, with the latest suggestion that model made for it in
that arm. ``served`` still counts every stored suggestion.
"""

from django.db import connection

_ARMS_SQL = """
    WITH latest AS (
        SELECT DISTINCT ON (s.model_version_id, s.arm, s.txn_id)
            s.model_version_id, s.arm, s.txn_id, s.label, s.outcome
        FROM ml_suggestions s
        ORDER BY s.model_version_id, s.arm, s.txn_id, s.id DESC
    ),
    served AS (
        SELECT model_version_id, arm, count(*) AS served
        FROM ml_suggestions
        GROUP BY model_version_id, arm
    )
    SELECT
        latest.model_version_id,
        latest.arm,
        served.served,
        count(*) AS transactions,
        count(l.txn_id) AS evaluated,
        count(*) FILTER (WHERE l.label = latest.label) AS correct,
        count(*) FILTER (WHERE latest.outcome = 'accepted') AS accepted,
        count(*) FILTER (WHERE latest.outcome = 'overridden') AS overridden
    FROM latest
    JOIN served USING (model_version_id, arm)
    LEFT JOIN transaction_labels l
        ON l.txn_id = latest.txn_id AND l.source = 'human'
    GROUP BY latest.model_version_id, latest.arm, served.served
    ORDER BY latest.model_version_id DESC, latest.arm
"""

ARM_COLUMNS = (
    "model_version",
    "arm",
    "served",
    "transactions",
    "evaluated",
    "correct",
    "accepted",
    "overridden",
)


def arm_report():
    """Per model version and arm: what was served and how often it was right.

    - ``served``: suggestions stored;
    - ``transactions``: distinct transactions they were for;
    - ``evaluated``: those transactions that now have a human label;
    - ``correct``: evaluated ones whose label is the suggested category;
    - ``accuracy``: correct / evaluated (``None`` before any evaluation);
    - ``accepted`` / ``overridden``: the outcome the database recorded when
      a person first labeled the transaction after the suggestion.
    """
    with connection.cursor() as cursor:
        cursor.execute(_ARMS_SQL)
        rows = [dict(zip(ARM_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        evaluated = row["evaluated"]
        row["accuracy"] = row["correct"] / evaluated if evaluated else None
    return rows
