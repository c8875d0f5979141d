package mqttauth

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The hash formats written by mosquitto_passwd. "$7$" is what Mosquitto 2.x
// writes: PBKDF2-HMAC-SHA512 over the password with a random salt. "$6$" is
// what Mosquitto 1.x wrote: one SHA-512 of the password followed by the salt.
const (
	pwIterations  = 101 // mosquitto_passwd's default, so files stay interchangeable
	pwSaltLen     = 12  // bytes of random salt, as mosquitto_passwd uses
	pwHashLen     = 64  // SHA-512 output
	pwMaxIter     = 10_000_000
	pwMaxLineSize = 64 * 1024
)

type pwKind int

const (
	pwSHA512 pwKind = 6
	pwPBKDF2 pwKind = 7
)

// pwEntry is one parsed hash.
type pwEntry struct {
	kind pwKind
	iter int
	salt []byte
	hash []byte
}

// digest computes the hash of password under e's scheme and salt.
func (e *pwEntry) digest(password string) []byte {
	switch e.kind {
	case pwPBKDF2:
		k, err := pbkdf2.Key(sha512.New, password, e.salt, e.iter, len(e.hash))
		if err != nil {
			return nil
		}
		return k
	default:
		h := sha512.New()
		h.Write([]byte(password))
		h.Write(e.salt)
		return h.Sum(nil)
	}
}

// Users is a set of users and password hashes loaded from a file written by
// mosquitto_passwd (or by SetPassword). It is safe for concurrent use; it is
// never modified after LoadUsers returns.
type Users struct {
	byName map[string]*pwEntry
	dummy  *pwEntry // hashed against for unknown users so they cost the same
}

// Len returns how many users the file defines.
func (u *Users) Len() int { return len(u.byName) }

// LoadUsers reads a Mosquitto password file. Blank lines and lines starting
// with '#' are ignored; every other line must be "user:$7$..." or
// "user:$6$..." in mosquitto_passwd's format. A line that is not is an error
// naming file:line and never becomes a user (a malformed line once meant a
// user without a password in Mosquitto, CVE-2018-12551). An empty file
// defines no users.
func LoadUsers(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	return ParseUsers(path, data)
}

// ParseUsers is LoadUsers on a file already read; name is the file name
// used in errors. The error joins one error per bad line.
func ParseUsers(name string, data []byte) (*Users, error) {
	u := &Users{byName: map[string]*pwEntry{}}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), pwMaxLineSize)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		user, e, err := pwParseLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			continue
		}
		if _, dup := u.byName[user]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: user %q defined twice", name, n, user))
			continue
		}
		u.byName[user] = e
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s:%d: %w", name, n+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	salt := make([]byte, pwSaltLen)
	_, _ = rand.Read(salt)
	u.dummy = &pwEntry{kind: pwPBKDF2, iter: pwIterations, salt: salt, hash: make([]byte, pwHashLen)}
	return u, nil
}

// pwParseLine splits "user:hash" and parses the hash. It never echoes the
// hash in its errors: the file is secret.
func pwParseLine(line string) (string, *pwEntry, error) {
	i := strings.IndexByte(line, ':')
	if i < 0 {
		return "", nil, errors.New("no ':' between user name and password hash")
	}
	user, rest := line[:i], line[i+1:]
	if user == "" {
		return "", nil, errors.New("empty user name")
	}
	if rest == "" {
		return "", nil, fmt.Errorf("user %q has no password hash", user)
	}
	e, err := pwParseHash(rest)
	if err != nil {
		return "", nil, fmt.Errorf("user %q: %w", user, err)
	}
	return user, e, nil
}

func pwParseHash(s string) (*pwEntry, error) {
	parts := strings.Split(s, "$")
	// "$7$iter$salt$hash" splits into "", "7", iter, salt, hash;
	// "$6$salt$hash" into "", "6", salt, hash.
	if len(parts) < 2 || parts[0] != "" {
		return nil, errors.New("password hash does not start with $6$ or $7$")
	}
	e := &pwEntry{}
	var saltB64, hashB64 string
	switch parts[1] {
	case "7":
		if len(parts) != 5 {
			return nil, errors.New("$7$ hash is not $7$<iterations>$<salt>$<hash>")
		}
		it, err := strconv.Atoi(parts[2])
		if err != nil || it < 1 || it > pwMaxIter {
			return nil, fmt.Errorf("$7$ hash has a bad iteration count (want 1..%d)", pwMaxIter)
		}
		e.kind, e.iter, saltB64, hashB64 = pwPBKDF2, it, parts[3], parts[4]
	case "6":
		if len(parts) != 4 {
			return nil, errors.New("$6$ hash is not $6$<salt>$<hash>")
		}
		e.kind, saltB64, hashB64 = pwSHA512, parts[2], parts[3]
	default:
		return nil, errors.New("password hash does not start with $6$ or $7$")
	}
	var err error
	if e.salt, err = base64.StdEncoding.DecodeString(saltB64); err != nil || len(e.salt) == 0 {
		return nil, errors.New("password salt is not valid base64")
	}
	if e.hash, err = base64.StdEncoding.DecodeString(hashB64); err != nil {
		return nil, errors.New("password hash is not valid base64")
	}
	if len(e.hash) != pwHashLen {
		return nil, fmt.Errorf("password hash is %d bytes, want %d", len(e.hash), pwHashLen)
	}
	return e, nil
}

// Check reports whether password is user's password. The hash comparison is
// constant time, and an unknown user is hashed against a dummy entry so that
// a refusal takes about as long whether or not the user exists.
func (u *Users) Check(user, password string) bool {
	if u == nil {
		return false
	}
	e, ok := u.byName[user]
	if !ok {
		e = u.dummy
		if e == nil {
			return false
		}
	}
	got := e.digest(password)
	match := len(got) == len(e.hash) && subtle.ConstantTimeCompare(got, e.hash) == 1
	return ok && match
}

// SetPassword adds user to the password file at path, or replaces the user's
// hash, writing "$7$" with 101 iterations as mosquitto_passwd does. Other
// lines are kept as they are. A missing file is created with mode 0600. The
// file is replaced atomically (temporary file, fsync, rename), so a crash
// leaves either the old or the new file.
func SetPassword(path, user, password string) error {
	if user == "" || strings.ContainsAny(user, ":\r\n") {
		return fmt.Errorf("set password: user name %q must be non-empty and contain no ':' or line break", user)
	}
	if password == "" {
		return errors.New("set password: empty password")
	}
	if strings.ContainsAny(password, "\r\n") {
		return errors.New("set password: password contains a line break")
	}
	old, err := os.ReadFile(path)
	mode := fs.FileMode(0o600)
	switch {
	case err == nil:
		if st, serr := os.Stat(path); serr == nil {
			mode = st.Mode().Perm()
		}
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	default:
		return fmt.Errorf("set password: %w", err)
	}

	salt := make([]byte, pwSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("set password: salt: %w", err)
	}
	e := &pwEntry{kind: pwPBKDF2, iter: pwIterations, salt: salt, hash: make([]byte, pwHashLen)}
	sum := e.digest(password)
	if sum == nil {
		return errors.New("set password: pbkdf2 failed")
	}
	entry := fmt.Sprintf("%s:$7$%d$%s$%s", user, pwIterations,
		base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(sum))

	var out strings.Builder
	replaced := false
	text := string(old)
	if text != "" {
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		for _, l := range lines {
			if !replaced {
				if i := strings.IndexByte(l, ':'); i >= 0 && l[:i] == user {
					l = entry
					replaced = true
				}
			}
			out.WriteString(l)
			out.WriteByte('\n')
		}
	}
	if !replaced {
		out.WriteString(entry)
		out.WriteByte('\n')
	}
	if err := pwWriteAtomic(path, []byte(out.String()), mode); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// pwWriteAtomic writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the directory, so that a power cut at any
// moment leaves the old file or the new one, never an empty or partial
// one. On an error before the rename the temporary file is removed and
// path is untouched; an error syncing the directory after it is returned
// (the new file is in place, but a power cut could still undo the rename).
func pwWriteAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	tempPrefix := "." + filepath.Base(path) + ".tmp-"
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	removeStaleTemps(dir, tempPrefix)
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// staleTempAge is how old a temporary file of pwWriteAtomic must be to
// count as left by a run that crashed, not one still writing.
const staleTempAge = time.Minute

// removeStaleTemps removes the temporary files named prefix* in dir that
// a run killed (or cut off by a power cut) between creating and renaming
// one left behind. Failures are ignored: the file written is in place.
func removeStaleTemps(dir, prefix string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTempAge {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
