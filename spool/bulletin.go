package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/popperd/popper/platform"
)

// BulletinConfig says where a user's bulletins and bulletin state are
// (qpopper's pop_bull.c with a per-user HOME/.popbull; the BULLDB variant
// is not supported).
type BulletinConfig struct {
	Dir    string // bulletin directory (bulldir / -b)
	User   string // login name
	Host   string // this host's name, for the rewritten To: header
	Max    int    // max-bulletins: how many old bulletins a brand-new user gets
	Groups bool   // group-bulletins
	// InGroup reports membership of group (primary gid or member list);
	// it must answer false for a group that does not exist. Nil means
	// member of no group.
	InGroup   func(group string) bool
	StatePath string           // the user's state file, HOME/.popbull
	Now       func() time.Time // for the X-UIDL "<unix-time>.<seq>"; nil = time.Now
}

// bulletin is one due bulletin file.
type bulletin struct {
	num  int64
	name string // file name inside the directory
}

// Bulletins are the bulletins due for one user at one login.
type Bulletins struct {
	c       BulletinConfig
	due     []bulletin
	last    int64 // last number recorded as sent (after the state rules)
	max     int64 // highest bulletin number in the directory
	rewrite bool  // the state file is missing, empty or garbage
	written bool  // WriteTo completed
	skipped []error
}

// maxStateSize bounds the state file read: it holds one number.
const maxStateSize = 4096

// PendingBulletins reads the user's state and the bulletin directory and
// returns the bulletins due (number > last sent), in number order. Only
// names starting with a digit are bulletins; the number is their leading
// decimal digits. With Groups, the second dot-separated token of the name
// is a group: "ALL" or no token means everyone, any other group only its
// members (InGroup).
//
// State (doc/qpopper.md, "Bulletins"): no state file means a new user,
// who gets the newest Max bulletins; an empty file means all were sent; a
// file not holding a number is treated like a new user's. The latter two
// are rewritten at Commit.
//
// A missing or unreadable directory returns an error whose text is
// qpopper's log line; the caller logs it and the login goes on.
func PendingBulletins(c BulletinConfig) (*Bulletins, error) {
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return nil, bulletinDirError(c.Dir, err)
	}
	b := &Bulletins{c: c}
	var all []struct {
		bulletin
		forUser bool
	}
	for _, e := range entries {
		name := e.Name()
		num, ok := bulletinNumber(name)
		if !ok {
			continue
		}
		if e.IsDir() {
			continue
		}
		if num > b.max {
			b.max = num
		}
		all = append(all, struct {
			bulletin
			forUser bool
		}{bulletin{num, name}, !c.Groups || bulletinForUser(name, c.InGroup)})
	}

	maxNew := int64(c.Max)
	if maxNew < 0 {
		maxNew = 0
	}
	last, state, err := readBulletinState(c.StatePath)
	if err != nil {
		return nil, err
	}
	switch state {
	case stateMissing, stateGarbage:
		b.last, b.rewrite = b.max-maxNew, true
	case stateEmpty:
		b.last, b.rewrite = b.max, true
	default:
		b.last = last
	}

	for _, a := range all {
		if a.num > b.last && a.forUser {
			b.due = append(b.due, a.bulletin)
		}
	}
	sort.Slice(b.due, func(i, j int) bool {
		if b.due[i].num != b.due[j].num {
			return b.due[i].num < b.due[j].num
		}
		return b.due[i].name < b.due[j].name
	})
	return b, nil
}

// bulletinDirError renders qpopper's "Unable to open bulletin directory"
// log text, with the C library's capitalised error string and the errno.
func bulletinDirError(dir string, err error) error {
	if len(dir) > 128 {
		dir = dir[:128]
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("Unable to open bulletin directory '%s': %v (0)", dir, err)
	}
	msg := errno.Error()
	if msg != "" && 'a' <= msg[0] && msg[0] <= 'z' {
		msg = string(msg[0]-'a'+'A') + msg[1:]
	}
	return fmt.Errorf("Unable to open bulletin directory '%s': %s (%d)", dir, msg, int(errno))
}

// bulletinNumber returns the leading decimal number of a bulletin file
// name; false for names not starting with a digit or with a number too
// large for a C long.
func bulletinNumber(name string) (int64, bool) {
	i := 0
	for i < len(name) && '0' <= name[i] && name[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(name[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// bulletinForUser applies group-bulletins to a file name.
func bulletinForUser(name string, inGroup func(string) bool) bool {
	tokens := strings.Split(name, ".")
	if len(tokens) < 2 || tokens[1] == "" || tokens[1] == "ALL" {
		return true
	}
	return inGroup != nil && inGroup(tokens[1])
}

type bulletinState int

const (
	stateNumber bulletinState = iota
	stateMissing
	stateEmpty
	stateGarbage
)

// readBulletinState reads the last bulletin number sent from path.
func readBulletinState(path string) (int64, bulletinState, error) {
	f, err := platform.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, stateMissing, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("bulletin state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return 0, 0, fmt.Errorf("bulletin state: %w", err)
	}
	if len(data) > maxStateSize {
		return 0, stateGarbage, nil
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return 0, stateEmpty, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, stateGarbage, nil
	}
	return n, stateNumber, nil
}

// Len is the number of due bulletins (some may still be skipped by
// WriteTo).
func (b *Bulletins) Len() int { return len(b.due) }

// Skipped lists the bulletins WriteTo left out and why, for the log.
func (b *Bulletins) Skipped() []error { return b.skipped }

// WriteTo appends the due bulletins to w as mbox messages. A bulletin
// whose first line is not a valid "From " line (or that cannot be opened)
// is left out and reported in Skipped. Each message gets
// "X-UIDL: <unix-time>.<3-digit sequence>" after its From line; its own
// X-UIDL and Status header lines are dropped, and a To: header is replaced
// by "To: <user>@<host>" (continuation lines of dropped and replaced
// headers go with them). A message not ending in a blank line gets one,
// so the next From line is a separator. Files are streamed in bounded
// memory. An error means w holds a partial message: the caller truncates
// what was appended.
func (b *Bulletins) WriteTo(w io.Writer) (int64, error) {
	b.written, b.skipped = false, nil
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 32<<10)
	now := time.Now
	if b.c.Now != nil {
		now = b.c.Now
	}
	stamp := now().Unix()
	seq := 0
	for _, bl := range b.due {
		uid := fmt.Sprintf("%d.%03d", stamp, seq)
		ok, err := b.copyBulletin(bw, bl, uid)
		if err != nil {
			bw.Flush()
			return cw.n, err
		}
		if ok {
			seq++
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	b.written = true
	return cw.n, nil
}

// copyBulletin writes one bulletin; false (with an entry in skipped) when
// it is not a valid mbox message. Errors are write or read errors after
// output started.
func (b *Bulletins) copyBulletin(w *bufio.Writer, bl bulletin, uid string) (bool, error) {
	path := filepath.Join(b.c.Dir, bl.name)
	// A bulletin is the admin's (or, with a bulldir of their own, the
	// user's): never a link to someone's mailbox, never a FIFO to wait on.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		b.skipped = append(b.skipped, fmt.Errorf("bulletin %s: %w", path, err))
		return false, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		b.skipped = append(b.skipped, fmt.Errorf("bulletin %s: %w", path, err))
		return false, nil
	}
	if why := planted(fi, os.Geteuid(), true); why != "" {
		b.skipped = append(b.skipped, fmt.Errorf("bulletin %s: refused: %s (owner uid %d)", path, why, platform.IDOf(fi).Uid))
		return false, nil
	}
	br := bufio.NewReaderSize(f, 64<<10)

	first, err := br.ReadSlice('\n')
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		b.skipped = append(b.skipped, fmt.Errorf("bulletin %s: %w", path, err))
		return false, nil
	}
	if err != nil || !validFromLine(fromLineText(first)) {
		b.skipped = append(b.skipped, fmt.Errorf("bulletin %s: does not start with a valid From line", path))
		return false, nil
	}
	w.Write(first)
	w.WriteString("X-UIDL: " + uid + "\n")

	inHeader, dropping := true, false
	lastNL, lastBlank := true, false
	startOfLine := true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if startOfLine {
				isBlank := len(chunk) == 1 && chunk[0] == '\n' || len(chunk) == 2 && chunk[0] == '\r' && chunk[1] == '\n'
				lastBlank = isBlank
				if inHeader {
					switch {
					case isBlank:
						inHeader, dropping = false, false
					case chunk[0] == ' ' || chunk[0] == '\t':
						// continuation: follows its header's fate
					case hasPrefixFold(chunk, "X-UIDL:") || hasPrefixFold(chunk, "Status:"):
						dropping = true
					case hasPrefixFold(chunk, "To:"):
						dropping = true
						w.WriteString("To: " + b.c.User + "@" + b.c.Host + "\n")
					default:
						dropping = false
					}
				}
			} else {
				lastBlank = false
			}
			if !(inHeader && dropping) {
				w.Write(chunk)
			}
			lastNL = chunk[len(chunk)-1] == '\n'
			startOfLine = lastNL
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			break
		}
		return true, fmt.Errorf("bulletin %s: %w", path, err)
	}
	if inHeader && dropping && !lastNL {
		lastNL = true // the unterminated line was dropped
	}
	if !lastNL {
		w.WriteString("\n")
		lastBlank = false
	}
	if !lastBlank {
		w.WriteString("\n")
	}
	return true, nil
}

// fromLineText is the first line as the From-line test sees it: at most
// maxFrag bytes with its newline, without "\n" or "\r\n", NULs as spaces.
func fromLineText(l []byte) []byte {
	if len(l) > maxFrag || len(l) == 0 || l[len(l)-1] != '\n' {
		return nil
	}
	t := bytes.TrimSuffix(l[:len(l)-1], []byte("\r"))
	return bytes.ReplaceAll(t, []byte{0}, []byte(" "))
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Commit records in StatePath the highest bulletin number seen, as
// "<n>\n", durably (temp file, fsync, rename, directory fsync). Call it
// only after the drop holding the bulletins is durable. Nothing is
// written when the state is already current.
func (b *Bulletins) Commit() error {
	if len(b.due) > 0 && !b.written {
		return errors.New("bulletin state: commit before the bulletins were written")
	}
	n := b.last
	if b.max > n {
		n = b.max
	}
	if n == b.last && !b.rewrite {
		return nil
	}
	if n < 0 {
		n = 0
	}
	tmp := fmt.Sprintf("%s.%d.tmp", b.c.StatePath, os.Getpid())
	f, err := platform.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// left by a crashed earlier session of this process id
		platform.Remove(tmp)
		f, err = platform.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return fmt.Errorf("bulletin state: %w", err)
	}
	_, err = f.Write([]byte(strconv.FormatInt(n, 10) + "\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = platform.Rename(tmp, b.c.StatePath)
	}
	if err != nil {
		platform.Remove(tmp)
		return fmt.Errorf("bulletin state: %w", err)
	}
	if err := platform.SyncParent(b.c.StatePath); err != nil {
		return fmt.Errorf("bulletin state: %w", err)
	}
	b.last, b.rewrite = n, false
	return nil
}
