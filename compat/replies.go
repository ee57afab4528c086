package compat

// The texts of qpopper's replies, without "+OK " or "-ERR " and without
// the [CODE]; RespAuth and the others name the code a refusal goes with.
// Each is written here once and taken from here by every package; the
// comments say where in qpopper's C each comes from and what the verbs
// take. Texts marked popper's are replies qpopper did not have.
const (
	RespAuth  = "AUTH"
	RespTemp  = "SYS/TEMP"
	RespPerm  = "SYS/PERM"
	RespInUse = "IN-USE"

	// Greetings (popper.c): version, host, APOP timestamp. Two blanks
	// before the timestamp, which is empty when APOP is not offered.
	ReplyGreeting    = "Qpopper (version %s) at %s starting.  %s"
	ReplyGreetingShy = "ready  %s"
	// QUIT, and the last line of a session that ended on a timeout or
	// a hangup (popper.c): host.
	ReplySignOff = "Pop server at %s signing off."

	// USER (pop_user.c): the user name as stored.
	ReplyPasswordRequired = "Password required for %s."
	// PASS and APOP (pop_pass.c): user, visible messages, "s" or "",
	// hidden messages, octets.
	ReplyLoggedIn = "%s has %d visible message%s (%d hidden) in %d octets."

	// The clear-text-password refusals (pop_user.c).
	ReplyUseStrongerAuth = "You must use stronger authentication such as AUTH or APOP to connect to this server"
	ReplyUseAPOP         = "You must use stronger authentication such as APOP to connect to this server"
	ReplyUseTLS          = "You must use TLS/SSL or stronger authentication such as APOP to connect to this server"

	// PASS, and every refusal that must not tell why (unknown user,
	// locked account, a hash popper cannot check) (pop_pass.c).
	ReplyBadPassword = "Password supplied for \"%s\" is incorrect."
	// PASS with the right password, from shadow's expiry fields.
	ReplyAccountExpired  = "\"%s\": account expired."
	ReplyPasswordExpired = "\"%s\": password expired."
	// PASS refused by nonauth-file or auth-file.
	ReplyAccessDenied = "\"%s\": access denied."
	// PASS for a uid <= BLOCK_UID; %d is BLOCK_UID itself ("below 10"
	// although uid 10 is refused too).
	ReplyBlockedUID = "Access is blocked for UIDs below %d"

	// APOP refused by auth-file or nonauth-file (pop_apop.c).
	ReplyPermissionDenied = "Permission denied."
	// APOP for a user without an entry in the APOP database.
	ReplyNotAuthenticated = "not authenticated"
	// APOP with a wrong digest.
	ReplyAuthFailure = "authentication failure"
	// APOP while the database cannot be read: user, error text, errno.
	ReplyAPOPDBUnavailable = "POP authentication DB not available (user %s): %s (%d)"
	// The database's mode is not 0600: pop_user.c prints "(0%o)",
	// pop_apop.c "(%.3o)"; each check keeps its own.
	ReplyAPOPDBModeUser = "POP authentication DB has wrong mode (0%o)"
	ReplyAPOPDBModeAPOP = "POP authentication DB has wrong mode (%.3o)"
	// popper: the account source could not answer (unreadable shadow, a
	// checkpassword program that exited 111, a PAM system error).
	ReplyAuthUnavailable = "Unable to check the password now; try again later."

	// CAPA (pop_extend.c).
	ReplyCapa = "Capability list follows"
	// STLS (pop_extend.c).
	ReplySTLS           = "STLS"
	ReplySTLSNotEnabled = "Command not enabled"
	ReplySTLSInProgress = "TLS in progress"

	// STAT: messages, octets. LIST and UIDL of one message: number,
	// size or UID.
	ReplyStat    = "%d %d"
	ReplyListOne = "%d %s"
	// LIST (pop_list.c): messages, octets.
	ReplyList = "%d visible messages (%d octets)"
	// UIDL (pop_uidl.c).
	ReplyUIDL = "uidl command accepted."
	// UIDL n of no such message, of a deleted one, and of a non-number
	// or 0 (%d is the message count, hidden ones included).
	ReplyUIDLOutOfRange = "Message %d out of range."
	ReplyUIDLDeleted    = "Message %d has been marked for deletion."
	ReplyUIDLNotNumber  = "Parameter must be a number between 1 and %d"
	// RETR (pop_send.c): octets. TOP, and RETR with X-MANGLE.
	ReplyRetr           = "%d octets"
	ReplyMessageFollows = "Message follows"
	// DELE (pop_dele.c), also for a message deleted already; LIST, RETR
	// and TOP of a deleted message answer it as -ERR.
	ReplyDeleted = "Message %d has been deleted."
	// LIST, RETR, TOP and DELE of no such message (atoi: a non-number
	// is message 0).
	ReplyNoSuchMessage = "Message %d does not exist."
	// X-MANGLE that does not parse: LIST's, RETR's and TOP's.
	ReplyBadListMangle = "Syntax error in x-mangle"
	ReplyBadMangle     = "Syntax error in Mangle"
	// NOOP (popper.c).
	ReplyNoop = "no big woop"
	// RSET and LAST, as qpopper 2.x worded them (pop_rset.c and
	// pop_last.c are not at hand): messages, octets; last message.
	ReplyRset = "Maildrop has %d messages (%d octets)"
	ReplyLast = "%d is the last read message."
	// XTND XLST (pop_xlst.c).
	ReplyXLST = "xlst command accepted; headers coming."

	// Commands that cannot run (qpopper 2.x's state table wording).
	ReplyUnknownCommand   = "Unknown command: \"%.40s\"."
	ReplyTooFewArgs       = "Too few arguments for the %s command."
	ReplyTooManyArgs      = "Too many arguments for the %s command."
	ReplyTooManyArgsAtAll = "Too many arguments supplied."
	// popper: lines that are not a command at all.
	ReplyNullCommand  = "Null command"
	ReplyBadCharacter = "Invalid characters in command"
	ReplyLineTooLong  = "Command line too long"
	// popper: XTND XMIT and MDEF: the command, upper-cased.
	ReplyNotSupported = "%.40s is not supported by this server"

	// The ends of a session without QUIT (popper.c pop_exit): host for
	// the first two; user for the update and restore failures, which
	// QUIT's update answers too.
	ReplyHangup        = "POP hangup from %s"
	ReplyTimeout       = "POP timeout from %s"
	ReplyEOF           = "POP EOF or I/O Error"
	ReplyUpdateFailed  = "POP mailbox update for %s failed!"
	ReplyRestoreFailed = "POP mailbox restoration for %s failed!"
	// popper: after max bad commands in a row.
	ReplyTooManyErrors = "Too many errors; closing the connection."

	// popper: AUTH (RFC 5034), bare and with a mechanism.
	ReplyAuthMechanisms = "Supported authentication mechanisms:"
	ReplyUnknownMech    = "Unknown authentication mechanism: %.40s"
	ReplyPlainBad       = "AUTH PLAIN %v."
	ReplyPlainCancelled = "AUTH PLAIN cancelled."
	ReplyPlainBase64    = "AUTH PLAIN response is not valid base64."

	// The maildrop refusals at login (pop_dropcopy.c): temp drop and
	// EWOULDBLOCK; spool, strerror, errno; temp drop, strerror, errno;
	// errno.
	ReplyInUse         = "%s lock busy!  Is another session active? (%d)"
	ReplyCopyFailed    = "Unable to copy mail spool file to temp pop dropbox %s: %s (%d)"
	ReplyQuotaExceeded = "Unable to copy mail spool file, quota exceeded (%d)"
	ReplyNotOwned      = "Temporary drop %s not owned by %s."
	ReplyOpenToOthers  = "Your temporary file %s is accessible by others.  This must be fixed"
	ReplyLinked        = "Your temporary file appears to have more than one link."
	// popper: the spool changed under a copy; spool, what happened.
	ReplySpoolChanged = "Mail spool %s changed while it was being copied (%v); try again."
	// popper: the session could not be set up for the user.
	ReplyHashDirFailed = "Unable to create hashed spool directory."
	ReplyChangeUser    = "Unable to change to user %s."
	ReplyConfigError   = "Server configuration error; try again later."
)

// LocalTimeFormat is the date of CAPA's X-LOCALTIME. qpopper's get_time()
// (get_time.c) is not among the C sources at hand, so the form is not
// checked against 4.0.5: it is RFC 5322's date-time, as in Date: headers.
const LocalTimeFormat = "Mon, 02 Jan 2006 15:04:05 -0700"
