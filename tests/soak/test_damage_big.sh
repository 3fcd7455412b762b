#!/usr/bin/env bash
# The soak tier's damaged logs: tests/e2e/test_damage.sh with a served log
# 2.5 times the fast tier's (100 queries/s for 200 s), the content of each
# sealed file flipped at its start, middle and end.
DAMAGE_QUERIES_PER_SEC=100 DAMAGE_EVERY_POSITION=1 exec "$(dirname "$0")/../e2e/test_damage.sh"
