// Package spool reads and writes mailboxes: mbox/MMDF parsing, UIDs, the
// maildrop life cycle (temp drop, locking order, update at QUIT) and crash
// recovery. It knows nothing of the POP3 protocol.
package spool

// Format is the mailbox format, decided by the first line of a drop
// (qpopper: a first line starting with ^A makes it MMDF).
type Format int

const (
	MBox Format = iota
	MMDF
)

// ParseOptions select qpopper's parsing and UID rules.
type ParseOptions struct {
	// ContentLength honours Content-Length: for message boundaries
	// (Solaris mail.local spools; qpopper's CONTENT_LENGTH build option).
	ContentLength bool
	// UWKluge hides the first message when it is UW IMAP's folder-internal
	// message (qpopper's UW-kluge).
	UWKluge bool
	// UpdateStatusHeaders is qpopper's update-status-headers (default
	// true): generated UIDs include a per-message counter and must be
	// written back as X-UIDL at update.
	UpdateStatusHeaders bool
	// OldStyleUID selects 32-hex-digit UIDs (qpopper's old-style-uid).
	OldStyleUID bool
	// UIDCounter is the start of qpopper's per-message counter (the time
	// the drop was locked); only used when UpdateStatusHeaders is on.
	UIDCounter int64
	// FromSpool selects qpopper's X-UIDL length window for reading a spool
	// in normal mode (do_drop_copy: 13..32 chars) instead of the window
	// for a temp drop or a server-mode spool (init_dropinfo: 12..33).
	FromSpool bool
}

// Msg describes one message of a drop file by offsets into it.
type Msg struct {
	Start     int64 // offset of the separator line ("From " line or MMDF separator)
	HdrStart  int64 // offset of the first header line
	BodyStart int64 // offset of the first body line, after the blank line (End if none)
	End       int64 // end of the message bytes (before the next separator or MMDF trailer)
	Next      int64 // offset where the next message's separator starts (after any MMDF trailer)
	Size      int64 // octets as qpopper reports them (doc/qpopper.md, "Sizes")
	BodyLines int   // lines in the body as counted for RETR/TOP
	UID       string
	UIDFound  bool // UID taken from an X-UIDL header (already persisted)
	Retrieved bool // a Status: header holding R
	Hidden    bool // the UW IMAP folder-internal message
	// BadContentLength: Content-Length was honoured (ParseOptions) but
	// found false, so the message was cut where From-scanning puts its
	// end. WriteUpdated drops its Content-Length lines, so that the
	// written-back drop parses the same way.
	BadContentLength bool
	// Canonical: the message is stored as WriteUpdated writes it back
	// when its Retrieved state is unchanged (X-UIDL first, the one
	// X-UIDL line, Status settled, no Content-Length dropped), so a
	// normal-mode update that changes nothing else need not write it.
	Canonical bool
}

// Range is a byte range [Off, Off+Len) of a drop file.
type Range struct {
	Off, Len int64
}

// Drop is what Parse found in a drop file.
type Drop struct {
	Format Format
	Sep    string // MMDF separator line including its newline; empty for mbox
	Msgs   []Msg
	// Junk holds byte ranges that belong to no message: bytes before the
	// first valid separator (qpopper refused such a drop outright; popper
	// quarantines them).
	Junk []Range
	End  int64 // offset after the last byte parsed
}
