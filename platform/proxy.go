package platform

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// PROXY protocol (HAProxy's send-proxy and send-proxy-v2): a load
// balancer opens each connection with a header naming the client. The
// header is parsed by github.com/pires/go-proxyproto; readProxyFrame
// takes exactly its bytes off the connection, so that the rest of it is
// handed, as it is, to a session process.

// ProxyTrusted reports whether addr is one of the trusted load balancers.
func ProxyTrusted(from []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range from {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ReadProxyHeader reads a PROXY v1 or v2 header from c within timeout
// and returns the client it names. A LOCAL header (the balancer's own
// health check) or one for an unknown protocol names no client: the
// result is then the zero AddrPort and the connection's own peer counts.
func ReadProxyHeader(c net.Conn, timeout time.Duration) (netip.AddrPort, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	raw, err := readProxyFrame(c)
	if err != nil {
		return netip.AddrPort{}, err
	}
	h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return netip.AddrPort{}, err
	}
	if h.Command.IsLocal() {
		return netip.AddrPort{}, nil
	}
	if src, _, ok := h.TCPAddrs(); ok {
		ap := src.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	return netip.AddrPort{}, nil
}

// maxProxyV2 bounds a v2 header's address and TLV block (HAProxy sends
// a few dozen bytes; the format allows 64 KiB).
const maxProxyV2 = 4096

// readProxyFrame reads exactly one header's bytes, and not one more: a
// v1 line up to its CRLF (at most 107 bytes, one read per byte), or
// v2's 16-byte preamble and the length it gives. The library parses
// and checks them.
func readProxyFrame(r io.Reader) ([]byte, error) {
	buf := make([]byte, 1, 108)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	switch buf[0] {
	case 'P':
		for len(buf) < 107 && !bytes.HasSuffix(buf, []byte("\r\n")) {
			var b [1]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, err
			}
			buf = append(buf, b[0])
		}
		return buf, nil
	case '\r':
		buf = append(buf, make([]byte, 15)...)
		if _, err := io.ReadFull(r, buf[1:]); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(buf[14:16]))
		if n > maxProxyV2 {
			return nil, fmt.Errorf("PROXY v2 header of %d bytes", n)
		}
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(r, buf[16:]); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return nil, proxyproto.ErrNoProxyProtocol
}
