"""Budget state shared across processes and machines: stores (SQLite, Redis, PostgreSQL) and the
reserve-then-settle guard that :mod:`usagetap.limits` runs when a store is configured."""
