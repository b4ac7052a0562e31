// Package peer is the suite's side of one WebSocket connection: a single
// reader goroutine that only pushes what it reads into an inbox, raw reads
// (a malformed frame from the target is evidence, never a reason for the
// harness to close), an explicit read limit, and a transcript of every frame
// in both directions with times relative to the dial.
package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/mppws/conformance/reference/frame"
	"github.com/mppws/conformance/suite/report"
)

// ReadLimit is the largest frame the harness accepts from a target. It is
// large on purpose: a big legitimate frame must not look like a fault.
const ReadLimit = 16 << 20

// Event is one thing read from the connection: a frame or the end of it.
type Event struct {
	At        time.Duration
	Binary    bool
	Raw       []byte
	Frame     frame.Frame // decoded when DecodeErr is nil
	DecodeErr error
	// Closed is set on the last event: the connection ended.
	Closed bool
	Code   websocket.StatusCode // -1 when it ended without a close frame
	Reason string
	Err    error
}

// IsFrame reports whether e is a decoded frame of kind k.
func (e Event) IsFrame(k frame.Kind) bool {
	return !e.Closed && e.DecodeErr == nil && !e.Binary && e.Frame.Kind == k
}

// String renders an event for failure messages.
func (e Event) String() string {
	switch {
	case e.Closed && e.Code >= 0:
		return fmt.Sprintf("close %d %q", e.Code, e.Reason)
	case e.Closed:
		return fmt.Sprintf("connection ended without a close frame (%v)", e.Err)
	case e.Binary:
		return fmt.Sprintf("binary frame of %d bytes", len(e.Raw))
	case e.DecodeErr != nil:
		return fmt.Sprintf("undecodable frame (%v): %s", e.DecodeErr, clip(e.Raw))
	default:
		return fmt.Sprintf("%s frame %s", e.Frame.Kind, clip(e.Raw))
	}
}

// Peer is one connection to the target.
type Peer struct {
	ws      *websocket.Conn
	dialect frame.Dialect
	start   time.Time
	inbox   chan Event
	done    chan struct{}
	T       *Transcript
	closed  sync.Once
	// CloseWait bounds how long CloseNormally waits for the target's close
	// frame (zero: coder/websocket's 5 s); the handshake then goes on in
	// the background until Closed.
	CloseWait time.Duration
	closeEnd  chan struct{}
}

// Dial connects to url with opts (TLS, headers, subprotocols; nil for the
// defaults) and starts the reader. The transcript t may be shared by
// several peers of one case; name tells them apart.
func Dial(ctx context.Context, url string, d frame.Dialect, t *Transcript, name string, opts *websocket.DialOptions) (*Peer, error) {
	ws, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: HTTP %d: %w", url, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(ReadLimit)
	p := &Peer{ws: ws, dialect: d, start: t.start, inbox: make(chan Event, 4096), done: make(chan struct{}), closeEnd: make(chan struct{}), T: t.named(name)}
	p.T.note("connected to %s", url)
	go p.read()
	return p, nil
}

// read is the one reader. It never asserts; it records and forwards.
func (p *Peer) read() {
	defer close(p.done)
	for {
		typ, b, err := p.ws.Read(context.Background())
		at := time.Since(p.start)
		if err != nil {
			e := Event{At: at, Closed: true, Code: websocket.CloseStatus(err), Err: err}
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				e.Reason = ce.Reason
			}
			p.T.add(at, report.Received, e.String())
			select {
			case p.inbox <- e:
			default: // inbox full after a flood; the transcript has it
			}
			close(p.inbox)
			return
		}
		e := Event{At: at, Binary: typ == websocket.MessageBinary, Raw: b}
		if e.Binary {
			p.T.add(at, report.Received, e.String())
		} else {
			e.Frame, e.DecodeErr = p.dialect.Decode(b, frame.FromServer)
			p.T.add(at, report.Received, string(b))
		}
		select {
		case p.inbox <- e:
		default:
			// A target flooding the harness: keep the evidence, drop the
			// rest, and end the connection rather than block the reader.
			p.T.note("inbox full: harness stops reading")
			p.ws.CloseNow()
		}
	}
}

// Next waits up to d for the next event. ok is false on timeout, and after
// the final (Closed) event has been consumed.
func (p *Peer) Next(d time.Duration) (Event, bool) {
	if d <= 0 {
		// Only what has arrived: a zero timer would race the inbox.
		select {
		case e, ok := <-p.inbox:
			return e, ok
		default:
			return Event{}, false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case e, ok := <-p.inbox:
		return e, ok
	case <-t.C:
		return Event{}, false
	}
}

// Send writes a frame in the peer's dialect.
func (p *Peer) Send(ctx context.Context, f frame.Frame) error {
	b, err := p.dialect.Encode(f)
	if err != nil {
		return err
	}
	return p.SendText(ctx, b)
}

// SendText writes raw bytes as a text frame.
func (p *Peer) SendText(ctx context.Context, b []byte) error {
	p.T.add(time.Since(p.start), report.Sent, string(b))
	return p.write(ctx, websocket.MessageText, b)
}

// SendBinary writes raw bytes as a binary frame.
func (p *Peer) SendBinary(ctx context.Context, b []byte) error {
	p.T.add(time.Since(p.start), report.Sent, fmt.Sprintf("binary frame of %d bytes: %s", len(b), clip(b)))
	return p.write(ctx, websocket.MessageBinary, b)
}

func (p *Peer) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.ws.Write(wctx, typ, b); err != nil {
		p.T.note("write failed: %v", err)
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Ping sends a WebSocket ping and waits for its pong.
func (p *Peer) Ping(ctx context.Context) error {
	p.T.note("ping")
	return p.ws.Ping(ctx)
}

// Close drops the connection without a close handshake: cleanup must not
// cost the suite seconds per case.
func (p *Peer) Close() {
	p.closed.Do(func() {
		p.T.note("harness closes the connection")
		p.ws.CloseNow()
		close(p.closeEnd)
	})
}

// Closed is closed once a close the harness started has ended.
func (p *Peer) Closed() <-chan struct{} { return p.closeEnd }

// CloseNormally performs a close handshake with 1000.
func (p *Peer) CloseNormally() {
	p.closed.Do(func() {
		p.T.note("harness closes with 1000")
		go func() {
			defer close(p.closeEnd)
			p.ws.Close(websocket.StatusNormalClosure, "")
		}()
		if p.CloseWait <= 0 {
			<-p.closeEnd
			return
		}
		select {
		case <-p.closeEnd:
		case <-time.After(p.CloseWait):
			// A wedged target never answers. The close frame is out, so
			// it has learnt that the connection is over; coder/websocket
			// gives up waiting on its own (and cannot be hurried).
			p.T.note("no close frame back within %s: the harness goes on", p.CloseWait)
		}
	})
}

// Done is closed when the reader has ended.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Transcript is the record of every frame of a case, both ways.
type Transcript struct {
	start   time.Time
	name    string
	mu      *sync.Mutex
	entries *[]report.Entry
}

// NewTranscript starts a transcript; times are relative to now.
func NewTranscript() *Transcript {
	return &Transcript{start: time.Now(), mu: &sync.Mutex{}, entries: new([]report.Entry)}
}

// named returns a view that prefixes lines with a connection name.
func (t *Transcript) named(name string) *Transcript {
	c := *t
	c.name = name
	return &c
}

// keptBytes bounds the text of one entry: every frame of the protocol is
// kept whole (a credential runs to a few kilobytes, and the report decodes
// it), the oversized frames of robustness cases are not.
const keptBytes = 64 << 10

func (t *Transcript) add(at time.Duration, dir report.Direction, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(text) > keptBytes {
		text = clipN([]byte(text), keptBytes)
	}
	*t.entries = append(*t.entries, report.Entry{At: at, Conn: t.name, Dir: dir, Text: text})
}

func (t *Transcript) note(format string, args ...any) {
	t.add(time.Since(t.start), report.Note, fmt.Sprintf(format, args...))
}

// Note adds a harness remark to the transcript.
func (t *Transcript) Note(format string, args ...any) { t.note(format, args...) }

// Entries returns the transcript so far, for the report.
func (t *Transcript) Entries() []report.Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(*t.entries)
}

// String renders the transcript, one frame per line, long frames clipped
// to stay readable in a failure message.
func (t *Transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(*t.entries) == 0 {
		return "(no frames)"
	}
	lines := make([]string, len(*t.entries))
	for i, e := range *t.entries {
		lines[i] = e.String(shownBytes)
	}
	return strings.Join(lines, "\n")
}

// shownBytes is how much of a frame a failure message shows.
const shownBytes = 600

// clip keeps transcripts readable: long frames show their head and size.
func clip(b []byte) string { return clipN(b, shownBytes) }

func clipN(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return fmt.Sprintf("%s… (%d bytes)", b[:n], len(b))
}
