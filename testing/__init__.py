"""Support shared by the tests and the benchmarks: a throwaway PostgreSQL server, an API world of tenants and
keys, the simulator's truth for comparisons, fit subjects and browser helpers. Never imported by the product."""
