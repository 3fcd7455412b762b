#!/usr/bin/env bash
# `make install` (README "Operations"): with PREFIX and DESTDIR it writes
# the binary under test (CTRD_BIN=$CTRD), the systemd unit with the
# binary's path filled in, the alert rules and the docs, and nothing else;
# the installed binary runs; `systemd-analyze verify` accepts the unit
# without a single message (it only warns on an unknown key, so any output
# fails); the unit keeps the hardening the README promises.
. "$(dirname "$0")/lib.sh"
ROOT="$E2E_DIR/../.."

dest="$TMP/dest"
if make -s -C "$ROOT" install DESTDIR="$dest" PREFIX=/opt/ctrd \
    CTRD_BIN="$CTRD" >"$TMP/make.out" 2>&1; then
    pass install_exit_0
else
    fail install_exit_0 "$(tail -3 "$TMP/make.out" | tr '\n' ' ')"
fi

(cd "$dest" && find . -type f -printf '%m %p\n' | sort) >"$TMP/files"
cat >"$TMP/want" <<'LIST'
644 ./opt/ctrd/lib/systemd/system/ctrd.service
644 ./opt/ctrd/share/ctrd/prometheus/alerts.yml
644 ./opt/ctrd/share/doc/ctrd/BENCHMARKS.md
644 ./opt/ctrd/share/doc/ctrd/README.md
644 ./opt/ctrd/share/doc/ctrd/RELIABILITY.md
755 ./opt/ctrd/bin/ctrd
LIST
check install_files_and_modes diff -u "$TMP/want" "$TMP/files"
check installed_binary_is_the_tested_one cmp "$CTRD" "$dest/opt/ctrd/bin/ctrd"
check installed_binary_runs "$dest/opt/ctrd/bin/ctrd" --version

unit="$dest/opt/ctrd/lib/systemd/system/ctrd.service"
check unit_execstart_names_the_installed_path \
    grep -qx 'ExecStart=/opt/ctrd/bin/ctrd serve --data=/var/lib/ctrd $CTRD_ARGS' "$unit"
check unit_has_no_placeholder_left bash -c "! grep -Eq '@[A-Z]+@' '$unit'"
for key in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes \
    StateDirectory=ctrd ProtectHome=yes PrivateTmp=yes; do
    check "unit_has_$key" grep -qx "$key" "$unit"
done

# systemd-analyze checks that ExecStart is executable: point it at the
# installed binary under DESTDIR.
sed "s|/opt/ctrd/bin/ctrd|$dest/opt/ctrd/bin/ctrd|" "$unit" >"$TMP/ctrd.service"
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP unit_verifies: systemd-analyze is not installed"
elif out=$(systemd-analyze verify "$TMP/ctrd.service" 2>&1) && [ -z "$out" ]; then
    pass unit_verifies
else
    fail unit_verifies "$(printf '%s' "$out" | tr '\n' ' ' | head -c 400)"
fi
finish
