"""One query module per database: every SQL statement usagetap runs, with each schema and its migrations.

- :mod:`.spool`: the delivery spool (rows waiting for sinks, dead letters, meta).
- :mod:`.ledger`: the local ledger (one row per record).
"""
