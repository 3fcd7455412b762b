/* ingest: `ctrd ingest`, batch (re)processing of complete log files into a
 * data directory (SPEC §4): all query inputs first, then all click inputs,
 * read in chunks of whole lines that the engine's workers parse in
 * parallel; a checkpoint every --checkpoint-every bytes commits counts and
 * per-input progress together, so a killed run is simply run again. */
#ifndef CTRD_INGEST_H
#define CTRD_INGEST_H

/* argv[0] is "ingest". Returns the process exit status (0, 1, 2). */
int ingest_command(int argc, char **argv);

#endif
