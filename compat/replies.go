package compat

// qpopper's authentication replies (pop_pass.c, pop_apop.c, pop_user.c),
// without the "-ERR " and the [CODE]; RespAuth and the others name the
// code each goes with. Format verbs take the user name unless noted.
const (
	RespAuth = "AUTH"
	RespTemp = "SYS/TEMP"
	RespPerm = "SYS/PERM"

	// PASS, and every refusal that must not tell why (unknown user,
	// locked account, a hash popper cannot check).
	ReplyBadPassword = "Password supplied for \"%s\" is incorrect."
	// PASS with the right password, from shadow's expiry fields.
	ReplyAccountExpired  = "\"%s\": account expired."
	ReplyPasswordExpired = "\"%s\": password expired."
	// PASS refused by nonauth-file or auth-file.
	ReplyAccessDenied = "\"%s\": access denied."
	// PASS with the right password for a uid <= BLOCK_UID; %d is
	// BLOCK_UID itself ("below 10" although uid 10 is refused too).
	ReplyBlockedUID = "Access is blocked for UIDs below %d"

	// APOP refused by auth-file or nonauth-file.
	ReplyPermissionDenied = "Permission denied."
	// APOP for a user without an entry in the APOP database.
	ReplyNotAuthenticated = "not authenticated"
	// APOP with a wrong digest.
	ReplyAuthFailure = "authentication failure"
	// APOP while the database cannot be read: %s user, %s error text,
	// %d errno.
	ReplyAPOPDBUnavailable = "POP authentication DB not available (user %s): %s (%d)"
	// The database's mode is not 0600: pop_user.c prints "(0%o)",
	// pop_apop.c "(%.3o)"; each check keeps its own.
	ReplyAPOPDBModeUser = "POP authentication DB has wrong mode (0%o)"
	ReplyAPOPDBModeAPOP = "POP authentication DB has wrong mode (%.3o)"

	// USER (clear-text-password default) for a user in the APOP database.
	ReplyUseStrongerAuth = "You must use stronger authentication such as AUTH or APOP to connect to this server"

	// popper: the account source could not answer (unreadable shadow, a
	// checkpassword program that exited 111, a PAM system error).
	ReplyAuthUnavailable = "Unable to check the password now; try again later."
)

// Log records of the login policy.
const (
	// qpopper's record of a failed PASS: user, client host, client address.
	LogFailedLogin = "[AUTH] Failed attempted login to %s from host (%s) %s"
	// popper: a connection closed after too many failed logins: count,
	// user, client host, client address.
	LogTooManyFailures = "[AUTH] %d failed logins, the last for %s, from host (%s) %s; connection closed"
	// qpopper's INFO record of an APOP attempt: user.
	LogAPOP = "apop \"%s\""
	// popper: why a login failed, for the admin only: user, reason.
	LogLoginDetail = "[AUTH] Login of %s refused: %v"
)
