/* verify: the offline commands for a data directory (SPEC §3, §4).
 * `ctrd verify` checks every checksum and cross-reference — the MANIFEST,
 * each file it names, the term dictionary, the write-ahead log from the
 * checkpoint's position — and reports every damaged file, changing
 * nothing. `ctrd recover --truncate-wal-at-damage` is the operator's
 * decision to drop the write-ahead log from its first damage on (the only
 * damage that can be repaired without a backup: what follows is lost) and
 * says exactly what it dropped. Both lock the directory: they refuse while
 * a ctrd process has it. */
#ifndef CTRD_VERIFY_H
#define CTRD_VERIFY_H

/* argv[0] is "verify". Returns the exit status: 0 clean, 1 damaged (or
 * the check could not run), 2 usage error. */
int verify_command(int argc, char **argv);

/* argv[0] is "recover". Returns the exit status: 0 (repaired, or nothing
 * to repair), 1 (damage it cannot repair, or an error), 2 usage error. */
int recover_command(int argc, char **argv);

#endif
