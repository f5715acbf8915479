"""Realistic synthetic bank transactions with golden labels.

``merchants`` is the catalogue, ``generate`` turns it into reproducible rows
and ``load`` copies them into PostgreSQL. The ``generate_transactions``
management command ties the three together.
"""
