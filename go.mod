module github.com/popperd/popper

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/go-crypt/crypt v0.14.15
	github.com/msteinert/pam/v2 v2.1.0
	github.com/pires/go-proxyproto v0.15.0
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
)

require github.com/go-crypt/x v0.4.16 // indirect
