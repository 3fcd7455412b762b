#!/usr/bin/env bash
# The soak tier's `ctrd serve` against the reference: tests/e2e/test_serve.sh
# on more than three times the fast tier's data (100 queries/s for 10
# minutes: 200 query chunks).
SERVE_QUERIES_PER_SEC=100 exec "$(dirname "$0")/../e2e/test_serve.sh"
