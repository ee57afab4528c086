package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// errRefused is a -ERR reply: the server refused what the client asked.
type errRefused struct{ cmd, reply string }

func (e *errRefused) Error() string { return e.cmd + ": " + e.reply }

func isRefused(err error) bool {
	var r *errRefused
	return errors.As(err, &r)
}

// client is one POP3 connection, spoken directly (no library): what is
// timed is the server.
type client struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

const ioTimeout = 10 * time.Minute

func dial(port int) (*client, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	cl := &client{c: c, r: bufio.NewReaderSize(c, 256<<10), w: bufio.NewWriterSize(c, 64<<10)}
	if _, err := cl.status("greeting"); err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

func (cl *client) Close() { cl.c.Close() }

// status reads one status line.
func (cl *client) status(cmd string) (string, error) {
	line, err := cl.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "+OK") {
		return line, nil
	}
	return "", &errRefused{cmd, line}
}

func (cl *client) send(cmd string) error {
	cl.w.WriteString(cmd)
	cl.w.WriteString("\r\n")
	return cl.w.Flush()
}

// do sends a command and reads its status line.
func (cl *client) do(cmd string) (string, error) {
	if err := cl.send(cmd); err != nil {
		return "", err
	}
	name := cmd
	if strings.HasPrefix(name, "PASS ") {
		name = "PASS"
	}
	return cl.status(name)
}

// multi reads a multi-line body up to the terminating ".", and returns
// the bytes it read (the wire form, dot-stuffing included).
func (cl *client) multi() (int64, error) {
	var n int64
	for {
		line, err := cl.r.ReadSlice('\n')
		n += int64(len(line))
		if err == bufio.ErrBufferFull {
			continue // a long line: its rest follows
		}
		if err != nil {
			return n, err
		}
		if len(line) == 3 && line[0] == '.' && line[1] == '\r' {
			return n, nil
		}
		if bytes.Equal(line, []byte(".\n")) {
			return n, nil
		}
	}
}

func (cl *client) login(user, pass string) error {
	if _, err := cl.do("USER " + user); err != nil {
		return err
	}
	_, err := cl.do("PASS " + pass)
	return err
}

// stat returns the message count.
func (cl *client) stat() (int, error) {
	line, err := cl.do("STAT")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, fmt.Errorf("STAT: %q", line)
	}
	return strconv.Atoi(f[1])
}

// quit sends QUIT, reads its reply and waits for the server to close
// the connection: the update is done when the +OK arrives (popper
// sends it once the spool is durable), the session when the EOF does.
func (cl *client) quit() error {
	if _, err := cl.do("QUIT"); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, cl.r)
	return err
}

// timings of one session, in seconds.
type timings struct {
	total, login, quit, retr float64
	retrBytes                int64
	msgs                     int
	capped                   bool // RETR one at a time stopped at its budget
}

type session struct {
	port       int
	user, pass string
	want       int // messages STAT must show (0: any number)
	// what the session does between STAT and QUIT
	uidl bool
	retr int // 0 none, 1 one command at a time, 2 pipelined
	// RETR stops after this long (0: never), and the rate is that of
	// the messages retrieved until then
	retrBudget time.Duration
	deleteMid  bool
}

// run runs one whole session: connect, USER/PASS, STAT, the work, QUIT,
// until the server closes the connection.
func (s session) run() (timings, error) {
	var t timings
	t0 := time.Now()
	cl, err := dial(s.port)
	if err != nil {
		return t, err
	}
	defer cl.Close()
	if err := cl.login(s.user, s.pass); err != nil {
		return t, err
	}
	t.login = time.Since(t0).Seconds()
	n, err := cl.stat()
	if err != nil {
		return t, err
	}
	t.msgs = n
	if s.want > 0 && n != s.want {
		// A server that shows part of the mailbox (or none) serves
		// another mailbox than the others: not comparable.
		return t, &errRefused{"STAT", fmt.Sprintf("shows %d of the %d messages", n, s.want)}
	}
	if s.uidl {
		if _, err := cl.do("UIDL"); err != nil {
			return t, err
		}
		if _, err := cl.multi(); err != nil {
			return t, err
		}
	}
	switch s.retr {
	case 1:
		r0 := time.Now()
		for i := 1; i <= n; i++ {
			if s.retrBudget > 0 && time.Since(r0) > s.retrBudget {
				t.capped = true
				break
			}
			if _, err := cl.do("RETR " + strconv.Itoa(i)); err != nil {
				return t, err
			}
			b, err := cl.multi()
			t.retrBytes += b
			if err != nil {
				return t, err
			}
		}
		t.retr = time.Since(r0).Seconds()
	case 2:
		// The commands go out in batches while the replies come in;
		// past the budget the client stops sending, reads the replies
		// to what it sent, and quits.
		r0 := time.Now()
		var stop atomic.Bool
		sentc := make(chan int, 1)
		werr := make(chan error, 1)
		go func() {
			w := bufio.NewWriterSize(cl.c, 64<<10)
			i := 1
			for ; i <= n && !stop.Load(); i++ {
				w.WriteString("RETR " + strconv.Itoa(i) + "\r\n")
				if i%32 == 0 {
					if err := w.Flush(); err != nil {
						break
					}
				}
			}
			werr <- w.Flush()
			sentc <- i - 1
		}()
		sent := -1
		for got := 0; got < n && (sent < 0 || got < sent); {
			if sent < 0 && s.retrBudget > 0 && time.Since(r0) > s.retrBudget {
				stop.Store(true)
				if err := <-werr; err != nil {
					return t, err
				}
				sent = <-sentc
				t.capped = sent < n
				continue
			}
			if _, err := cl.status("RETR " + strconv.Itoa(got+1)); err != nil {
				return t, err
			}
			b, err := cl.multi()
			t.retrBytes += b
			if err != nil {
				return t, err
			}
			got++
		}
		if sent < 0 {
			if err := <-werr; err != nil {
				return t, err
			}
			<-sentc
		}
		t.retr = time.Since(r0).Seconds()
	}
	if s.deleteMid && n > 0 {
		if _, err := cl.do("DELE " + strconv.Itoa((n+1)/2)); err != nil {
			return t, err
		}
	}
	q0 := time.Now()
	if err := cl.quit(); err != nil {
		return t, err
	}
	now := time.Now()
	t.quit = now.Sub(q0).Seconds()
	t.total = now.Sub(t0).Seconds()
	return t, nil
}
