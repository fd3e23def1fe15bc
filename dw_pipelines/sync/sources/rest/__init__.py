"""JSON REST APIs as a source: `config` (the YAML model), `client` (auth, retries, budget,
errors), `records` (JSON -> Arrow), `source` (`RestSource`, endpoints paged into batches).

Nothing is imported here: the catalog imports `config` when definitions load, and must not pay
for pyarrow or requests then."""
