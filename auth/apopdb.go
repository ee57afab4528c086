package auth

// The APOP secret database.
//
// qpopper kept APOP secrets in a gdbm, ndbm or Berkeley DB file whose
// layout depends on the library, its version and the host's byte order,
// so it cannot be copied between hosts. popper keeps them in a text file
// with this format (documented for administrators in popauth(8)):
//
//	popauth 1
//	alice:6f70656e20736573616d65
//	bob:73337372337421
//
//   - The first line is exactly "popauth 1": the format's name and
//     version. Any other first line is refused.
//   - Every further line is one user: NAME ":" HEX. NAME is 1 to 64 bytes
//     (qpopper's limit for a user name) of which none is a control
//     character, a space, DEL or ':'. HEX is the secret's bytes in
//     hexadecimal, two digits a byte (written in lower case; upper case is
//     read too), so that any byte of a secret is safe in the file. The
//     secret is 1 to 255 bytes, none of them NUL, CR or LF.
//   - Every line, the last one included, ends with LF. There are no blank
//     lines and no comments; a name appears at most once. popauth writes
//     the lines sorted by name (byte order); a reader accepts any order.
//
// The secret is stored as it is: qpopper's "obscuring" (every byte XOR
// 0xff) hid nothing from anyone who could read the file, and the file
// must be readable by root alone.
//
// Before believing a byte of it, OpenAPOPDB checks that the file is
// reached without a symbolic link, is a regular file with one link,
// owned by root (or by the effective uid of a process not running as
// root, for tests), of mode exactly 0600 as qpopper required, and that its
// directory is owned likewise and writable by nobody but its owner.
//
// The only writer is UpdateAPOPDB (and InitAPOPDB): under an fcntl lock on
// PATH.lock it reads the current file, writes the new contents to
// PATH.new, syncs it, renames it over PATH and syncs the directory. A
// crash or power loss at any moment leaves PATH whole, old or new; a
// PATH.new left behind is removed by the next update. Readers take no
// lock: a rename replaces the file in one step.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
)

// DefaultAPOPDB is where popper and popauth look for the APOP database
// unless the apop-db option says otherwise. It is not qpopper's path, so
// that a site going back to qpopper finds its own database untouched.
const DefaultAPOPDB = compat.DefaultAPOPDB

// apopMagic is the first line of the file.
const apopMagic = "popauth 1"

// Limits of names and secrets; see the format above.
const (
	MaxAPOPName   = 64
	MaxAPOPSecret = 255
	// maxAPOPFile bounds what is read: far beyond any real site (a
	// million users fit), small enough to refuse a runaway file.
	maxAPOPFile = 256 << 20
)

// apopLockWait is how long an update waits for another one to finish.
var apopLockWait = 30 * time.Second

// APOPDB is a database read by OpenAPOPDB or ParseAPOPDB.
type APOPDB struct {
	secrets map[string]string
}

// Secret returns the APOP secret of name.
func (db *APOPDB) Secret(name string) (secret string, ok bool) {
	secret, ok = db.secrets[name]
	return secret, ok
}

// Names returns the names that have a secret, sorted.
func (db *APOPDB) Names() []string {
	return slices.Sorted(maps.Keys(db.secrets))
}

// APOPModeError is a database whose mode is not 0600.
type APOPModeError struct {
	Path  string
	Found fs.FileMode // the permission bits found, with setuid, setgid and sticky
}

// Error ends in qpopper's text, which pop_user.c sends after
// "-ERR [SYS/PERM] ".
func (e *APOPModeError) Error() string {
	return fmt.Sprintf("%s: POP authentication DB has wrong mode (0%o)", e.Path, e.Mode())
}

// Mode returns the bits found as chmod's octal number (0644, 04600): the
// value qpopper's replies print with %o.
func (e *APOPModeError) Mode() fs.FileMode { return fs.FileMode(unixMode(e.Found)) }

// unixMode turns Go's mode bits back into the octal digits of chmod.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// APOPFormatError is a line that is not in the format above.
type APOPFormatError struct {
	Path string
	Line int // 1-based
	Msg  string
}

func (e *APOPFormatError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// ErrQpopperAPOPDB is wrapped in the error for a file that is qpopper's
// own database (gdbm, ndbm or Berkeley DB), which popper does not read.
var ErrQpopperAPOPDB = errors.New("qpopper's APOP database, which popper does not read")

func qpopperDBError(path, kind string) error {
	return fmt.Errorf("%s: %w (%s); convert it with popauth-export-qpopper and popauth -import, see popauth(8)",
		path, ErrQpopperAPOPDB, kind)
}

// OpenAPOPDB reads and checks the database at path. A missing file is an
// error for which errors.Is(err, fs.ErrNotExist) holds: the site has no
// APOP. A file that fails a check is refused with an error naming it: an
// *APOPModeError for the mode, an *APOPFormatError for a bad line, an
// error wrapping ErrQpopperAPOPDB for a qpopper database.
func OpenAPOPDB(path string) (*APOPDB, error) {
	f, err := platform.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if kind := qpopperNeighbour(path); kind != "" {
				return nil, qpopperDBError(path, kind)
			}
		}
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: is a symbolic link; refused", path)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file; refused", path)
	}
	if fi.Size() > maxAPOPFile {
		return nil, fmt.Errorf("%s: larger than %d bytes; refused", path, maxAPOPFile)
	}
	data, err := io.ReadAll(io.LimitReader(f.OS(), maxAPOPFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if kind := qpopperMagic(data); kind != "" {
		return nil, qpopperDBError(path, kind)
	}
	if err := checkAPOPFile(path, fi); err != nil {
		return nil, err
	}
	if err := checkAPOPDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return parseAPOP(data, path)
}

// ParseAPOPDB parses a database in the format above from r, without the
// checks OpenAPOPDB makes of a file (popauth -import reads the output of
// popauth-export-qpopper this way). name is used in errors.
func ParseAPOPDB(r io.Reader, name string) (*APOPDB, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxAPOPFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxAPOPFile {
		return nil, fmt.Errorf("%s: larger than %d bytes; refused", name, maxAPOPFile)
	}
	if kind := qpopperMagic(data); kind != "" {
		return nil, qpopperDBError(name, kind)
	}
	return parseAPOP(data, name)
}

// trustedOwner reports whether uid may own the database and its directory.
func trustedOwner(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}

func checkAPOPFile(path string, fi fs.FileInfo) error {
	id := platform.IDOf(fi)
	if !trustedOwner(id.Uid) {
		return fmt.Errorf("%s: owned by uid %d, not root; refused", path, id.Uid)
	}
	if id.Nlink != 1 {
		return fmt.Errorf("%s: has %d hard links, not 1; refused", path, id.Nlink)
	}
	if m := fi.Mode() &^ fs.ModeType; m != 0o600 {
		return &APOPModeError{Path: path, Found: m}
	}
	return nil
}

// checkAPOPDir refuses a directory someone other than root could change
// entries of: whoever can rename files in it can replace the database.
func checkAPOPDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	if id := platform.IDOf(fi); !trustedOwner(id.Uid) {
		return fmt.Errorf("%s: directory of the APOP database owned by uid %d, not root; refused", dir, id.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s: directory of the APOP database is writable by group or others (mode 0%o); refused",
			dir, unixMode(fi.Mode()))
	}
	return nil
}

// qpopperMagic recognises the first bytes of the files qpopper's database
// libraries write; it returns "" for anything else.
func qpopperMagic(data []byte) string {
	u32 := func(off int) (le, be uint32, ok bool) {
		if len(data) < off+4 {
			return 0, 0, false
		}
		b := data[off : off+4]
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24,
			uint32(b[3]) | uint32(b[2])<<8 | uint32(b[1])<<16 | uint32(b[0])<<24, true
	}
	either := func(off int, magic ...uint32) bool {
		le, be, ok := u32(off)
		if !ok {
			return false
		}
		for _, m := range magic {
			if le == m || be == m {
				return true
			}
		}
		return false
	}
	switch {
	// gdbm: GDBM_OMAGIC, GDBM_MAGIC32, GDBM_MAGIC64 and the numsync
	// variants of gdbm 1.21, in the writer's byte order.
	case either(0, 0x13579ace, 0x13579acd, 0x13579acf, 0x13579ad0, 0x13579ad1):
		return "a gdbm file"
	// Berkeley DB 1.85 (4.4BSD's dbm, the .db file): the magic is first.
	case either(0, 0x061561, 0x053162):
		return "a Berkeley DB 1.x file"
	// Berkeley DB 2 and later: the magic follows the LSN and page number.
	case either(12, 0x061561, 0x053162):
		return "a Berkeley DB file"
	}
	return ""
}

// qpopperNeighbour names the qpopper ndbm or Berkeley DB files that stand
// beside a missing path, or returns "".
func qpopperNeighbour(path string) string {
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	switch {
	case exists(path+".dir") && exists(path+".pag"):
		return "an ndbm " + filepath.Base(path) + ".dir/.pag pair"
	case exists(path + ".pag"):
		return "an ndbm " + filepath.Base(path) + ".pag file"
	case exists(path + ".db"):
		return "a Berkeley DB " + filepath.Base(path) + ".db file"
	}
	return ""
}

func parseAPOP(data []byte, name string) (*APOPDB, error) {
	db := &APOPDB{secrets: map[string]string{}}
	if len(data) == 0 {
		return nil, &APOPFormatError{Path: name, Line: 1, Msg: "empty file, not a popauth database (its first line must be \"" + apopMagic + "\")"}
	}
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, &APOPFormatError{Path: name, Line: lineNo, Msg: "last line does not end with a newline (file cut short?)"}
		}
		line := string(data[:i])
		data = data[i+1:]
		if strings.HasSuffix(line, "\r") {
			return nil, &APOPFormatError{Path: name, Line: lineNo, Msg: "line ends with CR LF; lines end with LF alone"}
		}
		if lineNo == 1 {
			if line != apopMagic {
				msg := fmt.Sprintf("first line is %q, want %q: not a popauth database", clip(line), apopMagic)
				if v, ok := strings.CutPrefix(line, "popauth "); ok {
					msg = fmt.Sprintf("format version %q; this popper reads version 1", clip(v))
				}
				return nil, &APOPFormatError{Path: name, Line: 1, Msg: msg}
			}
			continue
		}
		user, hexSecret, ok := strings.Cut(line, ":")
		if !ok {
			return nil, &APOPFormatError{Path: name, Line: lineNo, Msg: "no ':' between name and secret"}
		}
		if err := CheckAPOPName(user); err != nil {
			return nil, &APOPFormatError{Path: name, Line: lineNo, Msg: err.Error()}
		}
		secret, err := hex.DecodeString(hexSecret)
		if err != nil {
			return nil, &APOPFormatError{Path: name, Line: lineNo, Msg: fmt.Sprintf("secret of %q is not hexadecimal: %v", user, err)}
		}
		if err := CheckAPOPSecret(string(secret)); err != nil {
			return nil, &APOPFormatError{Path: name, Line: lineNo, Msg: fmt.Sprintf("secret of %q: %v", user, err)}
		}
		if _, dup := db.secrets[user]; dup {
			return nil, &APOPFormatError{Path: name, Line: lineNo, Msg: fmt.Sprintf("%q appears twice", user)}
		}
		db.secrets[user] = string(secret)
	}
	return db, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// CheckAPOPName reports why name cannot be a key of the database.
func CheckAPOPName(name string) error {
	if name == "" {
		return errors.New("empty user name")
	}
	if len(name) > MaxAPOPName {
		return fmt.Errorf("user name of %d bytes, more than %d", len(name), MaxAPOPName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f || c == ':' {
			return fmt.Errorf("user name %s holds %s", strconv.Quote(name), describeByte(c))
		}
	}
	return nil
}

// CheckAPOPSecret reports why secret cannot be an APOP secret.
func CheckAPOPSecret(secret string) error {
	if secret == "" {
		return errors.New("empty secret")
	}
	if len(secret) > MaxAPOPSecret {
		return fmt.Errorf("secret of %d bytes, more than %d", len(secret), MaxAPOPSecret)
	}
	for i := 0; i < len(secret); i++ {
		switch secret[i] {
		case 0, '\r', '\n':
			return fmt.Errorf("secret holds %s", describeByte(secret[i]))
		}
	}
	return nil
}

func describeByte(c byte) string {
	switch c {
	case 0:
		return "a NUL"
	case '\r':
		return "a carriage return"
	case '\n':
		return "a line feed"
	case ' ':
		return "a space"
	case ':':
		return "a ':'"
	}
	return fmt.Sprintf("the control character 0x%02x", c)
}

// encodeAPOP writes secrets in the format above, sorted by name.
func encodeAPOP(secrets map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(apopMagic + "\n")
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		if err := CheckAPOPName(name); err != nil {
			return nil, err
		}
		if err := CheckAPOPSecret(secrets[name]); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(hex.EncodeToString([]byte(secrets[name])))
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// UpdateAPOPDB changes the database at path: change gets every secret by
// name and may add, replace and delete entries; when it returns nil the
// result replaces the file. The file must exist (InitAPOPDB creates it)
// and pass OpenAPOPDB's checks; a missing one is an error for which
// errors.Is(err, fs.ErrNotExist) holds. Updates exclude each other with
// an fcntl lock on path+".lock", which stays behind, empty.
func UpdateAPOPDB(path string, change func(secrets map[string]string) error) error {
	_, err := updateAPOP(path, false, change)
	return err
}

// InitAPOPDB creates an empty database at path when there is none and
// reports whether it did. An existing database is checked and left as it
// is. The directory must exist.
func InitAPOPDB(path string) (created bool, err error) {
	return updateAPOP(path, true, nil)
}

// The durable steps of an update, as failpoints (crash-test builds kill
// the process there on request).
const (
	fpStaleRemoved = "popauth-stale-new-removed" // a PATH.new left by a crash is gone
	fpNewCreated   = "popauth-new-created"       // PATH.new exists, empty
	fpNewWritten   = "popauth-new-written"       // PATH.new holds the new contents
	fpNewSynced    = "popauth-new-synced"        // and they are durable
	fpRenamed      = "popauth-renamed"           // PATH is the new file
	fpDirSynced    = "popauth-dir-synced"        // and the rename is durable
)

// apopWriteChunk is the size of one write(2) of the new file.
const apopWriteChunk = 32 << 10

func updateAPOP(path string, create bool, change func(map[string]string) error) (created bool, err error) {
	if err := checkAPOPDir(filepath.Dir(path)); err != nil {
		return false, err
	}
	unlock, err := lockAPOP(path + ".lock")
	if err != nil {
		return false, err
	}
	defer unlock()

	newPath := path + ".new"
	// We hold the lock, so a PATH.new is what a crashed update left.
	if err := platform.Remove(newPath); err == nil {
		platform.Failpoint(fpStaleRemoved)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}

	db, err := OpenAPOPDB(path)
	switch {
	case err == nil && create:
		return false, nil
	case err == nil:
	case create && errors.Is(err, fs.ErrNotExist):
		db = &APOPDB{secrets: map[string]string{}}
		created = true
	case errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("%w (create it with popauth -init)", err)
	default:
		return false, err
	}
	secrets := maps.Clone(db.secrets)
	if change != nil {
		if err := change(secrets); err != nil {
			return false, err
		}
	}
	data, err := encodeAPOP(secrets)
	if err != nil {
		return false, err
	}
	if err := writeAPOPNew(newPath, data); err != nil {
		platform.Remove(newPath)
		return false, err
	}
	if err := platform.Rename(newPath, path); err != nil {
		platform.Remove(newPath)
		return false, err
	}
	platform.Failpoint(fpRenamed)
	if err := platform.SyncParent(path); err != nil {
		return false, fmt.Errorf("%s: the change is made but may not survive a power loss: %w", filepath.Dir(path), err)
	}
	platform.Failpoint(fpDirSynced)
	return created, nil
}

// writeAPOPNew creates name, which must not exist, and makes data durable
// in it.
func writeAPOPNew(name string, data []byte) error {
	f, err := platform.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	platform.Failpoint(fpNewCreated)
	if os.Geteuid() == 0 {
		// A setuid popauth creates files with its caller's group.
		if err := f.OS().Chown(0, 0); err != nil {
			return err
		}
	}
	// The umask may have taken the owner's bits away.
	if err := f.OS().Chmod(0o600); err != nil {
		return err
	}
	for len(data) > 0 {
		n := min(len(data), apopWriteChunk)
		if _, err := f.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	platform.Failpoint(fpNewWritten)
	if err := f.Sync(); err != nil {
		return err
	}
	platform.Failpoint(fpNewSynced)
	return f.Close()
}

// lockAPOP takes the update lock, waiting up to apopLockWait.
func lockAPOP(name string) (unlock func(), err error) {
	f, err := platform.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: is a symbolic link; refused", name)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		switch id := platform.IDOf(fi); {
		case !fi.Mode().IsRegular():
			err = fmt.Errorf("%s: not a regular file; refused", name)
		case !trustedOwner(id.Uid):
			err = fmt.Errorf("%s: owned by uid %d, not root; refused", name, id.Uid)
		case id.Nlink != 1:
			err = fmt.Errorf("%s: has %d hard links, not 1; refused", name, id.Nlink)
		}
	}
	if err == nil && os.Geteuid() == 0 {
		if id := platform.IDOf(fi); id.Uid != 0 || id.Gid != 0 {
			// Created by a setuid popauth, with its caller's group.
			err = f.OS().Chown(0, 0)
		}
	}
	if err == nil && fi.Mode().Perm() != 0o600 {
		// Created under a umask that took the owner's bits away.
		err = f.OS().Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if _, err := platform.LockMailbox(f, []platform.LockKind{platform.LockFcntl}, apopLockWait); err != nil {
		f.Close()
		if errors.Is(err, platform.ErrLockBusy) {
			return nil, fmt.Errorf("%s: another popauth has held the lock for %v; try again later", name, apopLockWait)
		}
		return nil, err
	}
	// Closing the descriptor releases the lock.
	return func() { f.Close() }, nil
}
