package nodelocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Mono is a reading of the node's CLOCK_MONOTONIC: the time since an unspecified point (the
// boot), the same for every process on the node. Readings of different nodes, or of different
// boots, are never compared.
type Mono time.Duration

// Sub is m - o.
func (m Mono) Sub(o Mono) time.Duration { return time.Duration(m - o) }

// Add is m + d.
func (m Mono) Add(d time.Duration) Mono { return m + Mono(d) }

// MonoClock reads the node's CLOCK_MONOTONIC ([SystemClock]; tests pass a fake).
type MonoClock func() (Mono, error)

const (
	// Version is the records' format version; a reader accepts only this one.
	Version = 1
	// MaxRecordSize bounds a record file: anything longer is not a record.
	MaxRecordSize = 4096
	// MaxInterval bounds an agent's write interval: a record claiming a longer one is damaged.
	MaxInterval = time.Minute

	kindAgent  = "agent"
	kindHolder = "holder"
)

// AgentRecord is what the node agent says about itself, written after every renewal or
// decision of its loop.
type AgentRecord struct {
	// Node is the agent's node.
	Node string `json:"node"`
	// BootID is the node's boot ID when the record was written.
	BootID string `json:"bootID"`
	// PID and Incarnation identify the agent process.
	PID         int    `json:"pid"`
	Incarnation uint64 `json:"incarnation"`
	// WrittenAt is when the record was written (node CLOCK_MONOTONIC).
	WrittenAt Mono `json:"writtenAt"`
	// Interval is how often the agent writes the record at least (its renew interval). A
	// reader takes a record older than 2 x Interval for a hung agent.
	Interval time.Duration `json:"interval"`
	// Fenced is true while the agent has fenced its node (or is fencing it).
	Fenced bool `json:"fenced"`
	// HasQuorum is the agent's own view: its side of the cluster has quorum (RULES.md 3).
	HasQuorum bool `json:"hasQuorum"`
}

// HolderRecord is what the quorum holder says about its hold on the quorum disk.
type HolderRecord struct {
	// Node is the holder's node.
	Node string `json:"node"`
	// BootID is the node's boot ID when the record was written.
	BootID string `json:"bootID"`
	// PID identifies the holder process.
	PID int `json:"pid"`
	// WrittenAt is when the record was written (node CLOCK_MONOTONIC).
	WrittenAt Mono `json:"writtenAt"`
	// Held is true while the holder holds the disk lease.
	Held bool `json:"held"`
	// Epoch is the epoch of the current or last hold (0: none yet).
	Epoch uint64 `json:"epoch"`
	// ValidUntil is when the disk lease's validity ends (node CLOCK_MONOTONIC), unless renewed;
	// 0 when not held.
	ValidUntil Mono `json:"validUntil"`
}

// envelope is a record file.
type envelope struct {
	Version int           `json:"version"`
	Kind    string        `json:"kind"`
	Agent   *AgentRecord  `json:"agent,omitempty"`
	Holder  *HolderRecord `json:"holder,omitempty"`
}

// Check reports what is wrong with r, naming the field.
func (r AgentRecord) Check() error {
	if err := checkCommon(r.Node, r.BootID, r.PID, r.WrittenAt); err != nil {
		return fmt.Errorf("agent record: %w", err)
	}
	if r.Interval <= 0 || r.Interval > MaxInterval {
		return fmt.Errorf("agent record: interval %v: want more than 0 and at most %v", r.Interval, MaxInterval)
	}
	return nil
}

// Check reports what is wrong with r, naming the field.
func (r HolderRecord) Check() error {
	if err := checkCommon(r.Node, r.BootID, r.PID, r.WrittenAt); err != nil {
		return fmt.Errorf("holder record: %w", err)
	}
	switch {
	case r.ValidUntil < 0:
		return fmt.Errorf("holder record: validUntil %d is negative", r.ValidUntil)
	case r.Held && r.Epoch == 0:
		return errors.New("holder record: held at epoch 0")
	case r.Held && r.ValidUntil == 0:
		return errors.New("holder record: held with no validUntil")
	}
	return nil
}

func checkCommon(node, boot string, pid int, written Mono) error {
	switch {
	case node == "" || len(node) > 253:
		return fmt.Errorf("node %q: want 1 to 253 bytes", node)
	case boot == "" || len(boot) > 64:
		return fmt.Errorf("bootID %q: want 1 to 64 bytes", boot)
	case pid <= 0:
		return fmt.Errorf("pid %d: want a positive one", pid)
	case written <= 0:
		return fmt.Errorf("writtenAt %d: want a positive CLOCK_MONOTONIC reading", written)
	}
	return nil
}

// MarshalAgent encodes r as a record file, checking it first.
func MarshalAgent(r AgentRecord) ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	return marshal(envelope{Version: Version, Kind: kindAgent, Agent: &r})
}

// MarshalHolder encodes r as a record file, checking it first.
func MarshalHolder(r HolderRecord) ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	return marshal(envelope{Version: Version, Kind: kindHolder, Holder: &r})
}

func marshal(e envelope) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%s record of %d bytes: more than %d", e.Kind, len(b), MaxRecordSize)
	}
	return append(b, '\n'), nil
}

// ParseAgent decodes an agent record file: bytes from a disk, checked field by field.
func ParseAgent(b []byte) (AgentRecord, error) {
	e, err := parse(b, kindAgent)
	if err != nil {
		return AgentRecord{}, err
	}
	if e.Agent == nil || e.Holder != nil {
		return AgentRecord{}, errors.New("agent record: want exactly the field \"agent\"")
	}
	if err := e.Agent.Check(); err != nil {
		return AgentRecord{}, err
	}
	return *e.Agent, nil
}

// ParseHolder decodes a holder record file: bytes from a disk, checked field by field.
func ParseHolder(b []byte) (HolderRecord, error) {
	e, err := parse(b, kindHolder)
	if err != nil {
		return HolderRecord{}, err
	}
	if e.Holder == nil || e.Agent != nil {
		return HolderRecord{}, errors.New("holder record: want exactly the field \"holder\"")
	}
	if err := e.Holder.Check(); err != nil {
		return HolderRecord{}, err
	}
	return *e.Holder, nil
}

func parse(b []byte, kind string) (envelope, error) {
	if len(b) > MaxRecordSize+1 {
		return envelope{}, fmt.Errorf("%s record: %d bytes, more than %d", kind, len(b), MaxRecordSize)
	}
	// Unknown fields are ignored: a newer writer may add fields (an incompatible change bumps
	// Version), and an agent is upgraded before its node's holder.
	d := json.NewDecoder(bytes.NewReader(b))
	var e envelope
	if err := d.Decode(&e); err != nil {
		return envelope{}, fmt.Errorf("%s record: %w", kind, err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return envelope{}, fmt.Errorf("%s record: data after the record", kind)
	}
	switch {
	case e.Version != Version:
		return envelope{}, fmt.Errorf("%s record: version %d, this build reads %d", kind, e.Version, Version)
	case e.Kind != kind:
		return envelope{}, fmt.Errorf("%s record: kind %q, want %q", kind, e.Kind, kind)
	}
	return e, nil
}

// age is how long before now a record written at written in boot was written, or why it cannot
// be judged. now and boot are the reader's.
func age(written, now Mono, recBoot, boot string) (time.Duration, error) {
	switch {
	case recBoot != boot:
		return 0, fmt.Errorf("written in another boot of the node (boot ID %s, now %s)", recBoot, boot)
	case written > now:
		return 0, fmt.Errorf("written %v in the future of this process's CLOCK_MONOTONIC", written.Sub(now))
	}
	return now.Sub(written), nil
}
