// Package sqlitefile is how edged opens the SQLite files it keeps its state
// in (the buffer's buffer.db, the broker's broker.db) and what it does when
// one is not a usable database: the file is created first, so that a
// permission problem reads as itself and not as SQLite's "unable to open
// database file"; Check runs quick_check, which finds a page torn by a
// power cut that SQLite would otherwise only meet when a row is read;
// MoveAside renames a corrupt file, with its WAL, out of the way; RetryBusy
// retries a transaction another process's lock held up.
//
// It deliberately knows no schema, no table and no part: each owner
// creates its own tables, decides what to salvage from a corrupt file and
// what to log.
package sqlitefile
