package pop3

// The in-memory X-MANGLE implementation the streaming one replaced, kept
// as the reference it must match byte for byte (FuzzMangle, and the
// tests of mangle_test.go).

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
)

// refMangleTextPlain converts a message in wire form (before CRLF and
// byte-stuffing) to plain text. Lines of the result end in LF.
func refMangleTextPlain(msg []byte) ([]byte, error) { return refMangleAt(msg, 0) }

// refMangleAt mangles a message found at MIME nesting depth (an enclosed
// message/rfc822 is one level deeper than its part).
func refMangleAt(msg []byte, depth int) ([]byte, error) {
	head, body := refSplitHeader(msg)
	fields := refReadFields(head)
	mt, params, cte, err := refContentType(fields)
	if err != nil {
		return nil, errNotMangled
	}
	if mt == "text/plain" && refIsIdentityEncoding(cte) {
		return nil, errNotMangled
	}
	var text bytes.Buffer
	charset := ""
	if err := refPlainText(&text, mt, params, cte, body, &charset, depth); err != nil {
		return nil, errNotMangled
	}
	if charset == "" {
		charset = "us-ascii"
	}
	var out bytes.Buffer
	for _, f := range fields {
		switch strings.ToLower(f.name) {
		case "content-type", "content-transfer-encoding", "mime-version":
			continue
		}
		out.Write(f.raw)
	}
	ct := mime.FormatMediaType("text/plain", map[string]string{"charset": charset})
	if ct == "" {
		ct = "text/plain; charset=unknown-8bit" // a charset name that is no token
	}
	fmt.Fprintf(&out, "MIME-Version: 1.0\nContent-Type: %s\nContent-Transfer-Encoding: 8bit\n\n", ct)
	b := text.Bytes()
	out.Write(b)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// refPlainText writes the text of one MIME entity to w.
func refPlainText(w *bytes.Buffer, mt string, params map[string]string, cte string, body []byte, charset *string, depth int) error {
	if depth > maxMIMEDepth {
		fmt.Fprintf(w, "[%s part not shown: nested too deeply]\n", mt)
		return nil
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		parts, err := refSplitMultipart(body, params["boundary"])
		if err != nil {
			return err
		}
		if mt == "multipart/alternative" {
			// The plain alternative if there is one, else the first.
			pick := 0
			for i, p := range parts {
				if p.mt == "text/plain" {
					pick = i
					break
				}
			}
			if len(parts) == 0 {
				return nil
			}
			parts = parts[pick : pick+1]
		}
		for i, p := range parts {
			if i > 0 && w.Len() > 0 && !bytes.HasSuffix(w.Bytes(), []byte("\n\n")) {
				w.WriteByte('\n')
			}
			if err := refPlainText(w, p.mt, p.params, p.cte, p.body, charset, depth+1); err != nil {
				return err
			}
		}
		return nil
	case mt == "text/plain":
		data, err := refDecodeBody(cte, body)
		if err != nil {
			return err
		}
		if *charset == "" {
			*charset = params["charset"]
		}
		w.Write(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			w.WriteByte('\n')
		}
		return nil
	case mt == "message/rfc822":
		data, err := refDecodeBody(cte, body)
		if err != nil {
			return err
		}
		inner, err := refMangleAt(data, depth+1)
		if err != nil {
			inner = data // already plain
		}
		w.Write(bytes.ReplaceAll(inner, []byte("\r\n"), []byte("\n")))
		return nil
	default:
		note := mt
		if name := params["name"]; name != "" {
			note += fmt.Sprintf(" %q", name)
		}
		data, err := refDecodeBody(cte, body)
		if err != nil {
			data = body
		}
		fmt.Fprintf(w, "[%s part not shown: %d octets]\n", note, len(data))
		return nil
	}
}

// refPart is one body part of a multipart entity.
type refPart struct {
	mt     string
	params map[string]string
	cte    string
	body   []byte
}

func refSplitMultipart(body []byte, boundary string) ([]refPart, error) {
	if boundary == "" {
		return nil, errors.New("multipart without boundary")
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var parts []refPart
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			return parts, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		h := p.Header
		mt, params, err := refParseType(h.Get("Content-Type"))
		if err != nil {
			// An unreadable part type is shown as an attachment note.
			mt, params = "application/octet-stream", map[string]string{}
		}
		if params["name"] == "" {
			if _, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && dp["filename"] != "" {
				params["name"] = dp["filename"]
			}
		}
		parts = append(parts, refPart{mt: mt, params: params, cte: h.Get("Content-Transfer-Encoding"), body: data})
	}
}

// refParseType parses a Content-Type value; an absent one is text/plain
// (RFC 2045 §5.2).
func refParseType(v string) (string, map[string]string, error) {
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", nil, err
	}
	return mt, params, nil
}

func refIsIdentityEncoding(cte string) bool {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

func refDecodeBody(cte string, body []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, body)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		return out[:n], err
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	}
	return body, nil
}

// refHeaderField is one header field with its folded lines as they came.
type refHeaderField struct {
	name  string
	value string // unfolded
	raw   []byte
}

// refSplitHeader cuts a message after the blank line that ends its header;
// the header keeps its line ends, the blank line belongs to neither.
func refSplitHeader(msg []byte) (head, body []byte) {
	for i := 0; i < len(msg); {
		end := bytes.IndexByte(msg[i:], '\n')
		if end < 0 {
			return msg, nil
		}
		line := msg[i : i+end+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return msg[:i], msg[i+end+1:]
		}
		i += end + 1
	}
	return msg, nil
}

func refReadFields(head []byte) []refHeaderField {
	var fields []refHeaderField
	for len(head) > 0 {
		end := bytes.IndexByte(head, '\n')
		if end < 0 {
			end = len(head) - 1
		}
		line := head[:end+1]
		head = head[end+1:]
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.raw = append(f.raw, line...)
			f.value += " " + strings.TrimSpace(string(line))
			continue
		}
		name, value, _ := strings.Cut(string(line), ":")
		fields = append(fields, refHeaderField{
			name:  strings.TrimSpace(name),
			value: strings.TrimSpace(value),
			raw:   append([]byte(nil), line...),
		})
	}
	return fields
}

// refContentType reads the top-level MIME type and transfer encoding.
func refContentType(fields []refHeaderField) (mt string, params map[string]string, cte string, err error) {
	var ct string
	for _, f := range fields {
		switch textproto.CanonicalMIMEHeaderKey(f.name) {
		case "Content-Type":
			if ct == "" {
				ct = f.value
			}
		case "Content-Transfer-Encoding":
			if cte == "" {
				cte = f.value
			}
		}
	}
	mt, params, err = refParseType(ct)
	return mt, params, cte, err
}

// refMangledSize is a mangled message's size counted as RETR counts: every
// LF as CRLF.
func refMangledSize(msg []byte) int64 {
	return int64(len(msg) + bytes.Count(msg, []byte("\n")) - bytes.Count(msg, []byte("\r\n")))
}

// refWriteTop writes the header of msg, the blank line and at most bodyLines
// lines of its body (all of them when bodyLines < 0).
func refWriteTop(w io.Writer, msg []byte, bodyLines int) error {
	head, body := refSplitHeader(msg)
	if bodyLines >= 0 {
		cut := 0
		for n := 0; n < bodyLines && cut < len(body); n++ {
			end := bytes.IndexByte(body[cut:], '\n')
			if end < 0 {
				cut = len(body)
				break
			}
			cut += end + 1
		}
		body = body[:cut]
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}
