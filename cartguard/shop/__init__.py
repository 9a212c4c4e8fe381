"""The shop's data: SQLAlchemy models (one package, ``models``), the engine and the queries."""
