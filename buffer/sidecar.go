package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The count record is a small file beside the database (<path>.count) that
// says how many entries the buffer held, how many it had ever removed, and
// its highest seq. It lives outside the database so that it survives what
// the database may not: a file deleted, cut to nothing, replaced, or rolled
// back by a power cut under power-loss-unsafe. Open compares the two and
// reports what is missing; otherwise such a loss would look like an empty
// queue.

// sidecarSuffix names the count record after the database file.
const sidecarSuffix = ".count"

// sidecarEvery bounds how often the committer rewrites the record (two
// fsyncs each time). Entries removed after the last write are explained by
// the database's own removal counter; only a database that lost that too
// can make Open over-report, by at most one interval's acks.
const sidecarEvery = time.Second

// countRecord is what the record holds.
type countRecord struct {
	messages int64 // entries stored
	removed  int64 // entries ever removed: acked, dropped, expired, discarded
	lastSeq  int64 // highest seq handed out
}

const countFormat = "edged buffer count v1\nmessages %d\nremoved %d\nlast_seq %d\n"

// readCount reads the record; ok is false when there is none (a first
// start) or it cannot be parsed.
func readCount(path string) (rec countRecord, ok bool, err error) {
	data, err := os.ReadFile(path + sidecarSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	if _, err := fmt.Sscanf(string(data), countFormat, &rec.messages, &rec.removed, &rec.lastSeq); err != nil {
		return rec, false, fmt.Errorf("%s: %w", path+sidecarSuffix, err)
	}
	return rec, true, nil
}

// writeCount replaces the record atomically: a power cut leaves the old
// record or the new one, never a torn one.
func writeCount(path string, rec countRecord) error {
	final := path + sidecarSuffix
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, countFormat, rec.messages, rec.removed, rec.lastSeq)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(final))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// recordOf is the record of a state.
func recordOf(st state) countRecord {
	return countRecord{messages: st.messages, removed: st.removed, lastSeq: st.lastSeq}
}

// checkLost compares the record left by the last run with what Open found
// and returns how many recorded entries are missing beyond what the
// database's removal counter explains. present counts the stored entries
// with seq up to the recorded last seq.
func checkLost(rec countRecord, st state, present int64) (lost int64, historyLost bool) {
	removedSince := st.removed - rec.removed
	if removedSince < 0 {
		// The database's counter went back: it is not the file the
		// record describes (deleted, replaced, rolled back).
		removedSince, historyLost = 0, true
	}
	return max(rec.messages-removedSince-present, 0), historyLost
}
