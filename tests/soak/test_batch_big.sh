#!/usr/bin/env bash
# The soak tier's batch ingest against the reference: tests/e2e/test_batch.sh
# on five times the fast tier's data (200 queries/s for 10 minutes), and on
# gen's default size.
BATCH_QUERIES_PER_SEC=200 BATCH_GEN_DEFAULT=1 exec "$(dirname "$0")/../e2e/test_batch.sh"
