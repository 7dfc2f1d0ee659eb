package monitor

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxFrameSize bounds a frame of the protocol between the Supervisor and the monitor process. A
// frame is a 4-byte big-endian length followed by that many bytes of one JSON message: a check
// or a ping from the Supervisor, a result or a pong from the monitor, each with the id of the
// request it belongs to. A reader refuses a longer frame before allocating for it.
const MaxFrameSize = 1 << 20

// kind says what a message is.
type kind string

const (
	kindCheck  kind = "check"  // Supervisor to monitor: run Check
	kindPing   kind = "ping"   // Supervisor to monitor: are you there?
	kindResult kind = "result" // monitor to Supervisor: the Result of check ID
	kindPong   kind = "pong"   // monitor to Supervisor: the answer to ping ID
)

// message is one frame's content.
type message struct {
	Kind   kind    `json:"kind"`
	ID     uint64  `json:"id"`
	Check  *Check  `json:"check,omitempty"`
	Result *Result `json:"result,omitempty"`
}

// errFrameSize is the error for a frame that is empty or longer than MaxFrameSize.
var errFrameSize = errors.New("frame size out of range")

// validate says whether the message is well-formed.
func (m *message) validate() error {
	switch m.Kind {
	case kindCheck:
		if m.Check == nil {
			return errors.New("check message without a check")
		}
	case kindResult:
		if m.Result == nil {
			return errors.New("result message without a result")
		}
	case kindPing, kindPong:
	default:
		return fmt.Errorf("unknown message kind %q", m.Kind)
	}
	return nil
}

// encodeMessage returns the frame that carries m.
func encodeMessage(m message) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, 0, 0}) // the length, filled in below
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.Kind, err)
	}
	frame := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	size := len(frame) - 4
	if size > MaxFrameSize {
		return nil, fmt.Errorf("%s message of %d bytes: %w", m.Kind, size, errFrameSize)
	}
	binary.BigEndian.PutUint32(frame, uint32(size)) //nolint:gosec // G115: size is at most MaxFrameSize.
	return frame, nil
}

// readMessage reads one frame from r and decodes its message. It returns io.EOF only when r ends
// cleanly between frames.
func readMessage(r io.Reader) (message, error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return message{}, io.EOF
		}
		return message{}, fmt.Errorf("read frame header: %w", err)
	}
	size := binary.BigEndian.Uint32(header[:])
	if size == 0 || size > MaxFrameSize {
		return message{}, fmt.Errorf("frame of %d bytes: %w", size, errFrameSize)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return message{}, fmt.Errorf("read frame of %d bytes: %w", size, noEOF(err))
	}
	var m message
	if err := json.Unmarshal(payload, &m); err != nil {
		return message{}, fmt.Errorf("decode frame: %w", err)
	}
	if err := m.validate(); err != nil {
		return message{}, fmt.Errorf("decode frame: %w", err)
	}
	return m, nil
}

// noEOF turns the end of input in the middle of a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
