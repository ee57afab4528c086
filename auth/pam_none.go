//go:build !(pam && cgo)

package auth

import "errors"

// NewPAM would return a Source that checks passwords through PAM, but
// this popper was built without it: PAM needs cgo and libpam, which the
// default and cross builds leave out. Build it natively with
//
//	CGO_ENABLED=1 go build -tags pam ./cmd/popper
//
// on a host with a C compiler and the libpam headers (Debian:
// libpam0g-dev).
func NewPAM(service string, client Client, lookup func(name string) (*Account, error)) (Source, error) {
	return nil, errPAMNotBuilt
}

var errPAMNotBuilt = errors.New("auth: this popper was built without PAM support; " +
	"rebuild it with `go build -tags pam` and cgo enabled (CGO_ENABLED=1, a C compiler " +
	"and the libpam headers, e.g. Debian's libpam0g-dev)")
