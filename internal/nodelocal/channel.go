package nodelocal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultDir is the root of the channel's directories on a node: <DefaultDir>/<cluster>/.
	DefaultDir = "/run/wolfpack"
	// DirEnv names the environment variable that overrides DefaultDir, for the agent and the
	// holder alike.
	DirEnv = "WOLFPACK_LOCAL_DIR"

	agentFile  = "agent"
	holderFile = "holder"
)

// ErrNoRecord is returned when the other process has written no record yet.
var ErrNoRecord = errors.New("no record")

// Channel is where the agent and the holder of one cluster on one node leave their records.
type Channel interface {
	WriteAgent(AgentRecord) error
	ReadAgent() (AgentRecord, error)
	WriteHolder(HolderRecord) error
	ReadHolder() (HolderRecord, error)
}

// RootDir is the channel's root directory: $WOLFPACK_LOCAL_DIR, else DefaultDir.
func RootDir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return DefaultDir
}

// Dir is the Channel of files <root>/<cluster>/agent and <root>/<cluster>/holder.
type Dir struct {
	path string
}

var _ Channel = (*Dir)(nil)

// OpenDir makes (if needed) and returns the channel directory of cluster under root.
func OpenDir(root, cluster string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("node-local channel: no directory")
	}
	if cluster == "" || cluster == "." || cluster == ".." || strings.ContainsAny(cluster, `/\`) {
		return nil, fmt.Errorf("node-local channel: cluster name %q cannot name a directory", cluster)
	}
	p := filepath.Join(root, cluster)
	if err := os.MkdirAll(p, 0o755); err != nil { //nolint:gosec // the agent and the holder run as different users and both use it.
		return nil, fmt.Errorf("node-local channel: %w", err)
	}
	// The agent (root) and the holder (an unprivileged user) both write here: sticky and
	// writable by all, like /tmp. Only the directory's owner may change its mode; another
	// process finds it as the owner left it.
	if st, err := os.Stat(p); err == nil && st.Mode().Perm()|os.ModeSticky != 0o777|os.ModeSticky {
		if err := os.Chmod(p, 0o777|os.ModeSticky); err != nil && !errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("node-local channel: %w", err)
		}
	}
	return &Dir{path: p}, nil
}

// Path is the channel's directory.
func (d *Dir) Path() string { return d.path }

// WriteAgent replaces the agent's record.
func (d *Dir) WriteAgent(r AgentRecord) error {
	b, err := MarshalAgent(r)
	if err != nil {
		return err
	}
	return d.write(agentFile, b)
}

// ReadAgent reads the agent's record (ErrNoRecord: none yet).
func (d *Dir) ReadAgent() (AgentRecord, error) {
	b, err := d.read(agentFile)
	if err != nil {
		return AgentRecord{}, err
	}
	r, err := ParseAgent(b)
	if err != nil {
		return AgentRecord{}, fmt.Errorf("%s: %w", filepath.Join(d.path, agentFile), err)
	}
	return r, nil
}

// WriteHolder replaces the holder's record.
func (d *Dir) WriteHolder(r HolderRecord) error {
	b, err := MarshalHolder(r)
	if err != nil {
		return err
	}
	return d.write(holderFile, b)
}

// ReadHolder reads the holder's record (ErrNoRecord: none yet).
func (d *Dir) ReadHolder() (HolderRecord, error) {
	b, err := d.read(holderFile)
	if err != nil {
		return HolderRecord{}, err
	}
	r, err := ParseHolder(b)
	if err != nil {
		return HolderRecord{}, fmt.Errorf("%s: %w", filepath.Join(d.path, holderFile), err)
	}
	return r, nil
}

// write replaces name with b atomically: a temporary file in the same directory, renamed.
func (d *Dir) write(name string, b []byte) error {
	f, err := os.CreateTemp(d.path, "."+name+"-*")
	if err != nil {
		return fmt.Errorf("node-local channel: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Readable by the other process; the sticky directory keeps it from replacing it.
		err = os.Chmod(tmp, 0o644) //nolint:gosec // the other process, another user, reads it.
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(d.path, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("node-local channel: writing the %s record: %w", name, err)
	}
	return nil
}

func (d *Dir) read(name string) ([]byte, error) {
	p := filepath.Join(d.path, name)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", p, ErrNoRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("node-local channel: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, MaxRecordSize+2))
	if err != nil {
		return nil, fmt.Errorf("node-local channel: reading %s: %w", p, err)
	}
	return b, nil
}

// Fake is an in-memory Channel for tests. It keeps the records encoded, so that they go through
// the same checks as the files' records.
type Fake struct {
	mu            sync.Mutex
	agent, holder []byte
	ReadErr       error // returned by every read while set
	agentW, holdW int
}

var _ Channel = (*Fake)(nil)

// WriteAgent implements Channel.
func (f *Fake) WriteAgent(r AgentRecord) error {
	b, err := MarshalAgent(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agent = b
	f.agentW++
	return nil
}

// ReadAgent implements Channel.
func (f *Fake) ReadAgent() (AgentRecord, error) {
	f.mu.Lock()
	b, rerr := f.agent, f.ReadErr
	f.mu.Unlock()
	switch {
	case rerr != nil:
		return AgentRecord{}, rerr
	case b == nil:
		return AgentRecord{}, ErrNoRecord
	}
	return ParseAgent(b)
}

// WriteHolder implements Channel.
func (f *Fake) WriteHolder(r HolderRecord) error {
	b, err := MarshalHolder(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holder = b
	f.holdW++
	return nil
}

// ReadHolder implements Channel.
func (f *Fake) ReadHolder() (HolderRecord, error) {
	f.mu.Lock()
	b, rerr := f.holder, f.ReadErr
	f.mu.Unlock()
	switch {
	case rerr != nil:
		return HolderRecord{}, rerr
	case b == nil:
		return HolderRecord{}, ErrNoRecord
	}
	return ParseHolder(b)
}

// Writes counts the records written: the agent's and the holder's.
func (f *Fake) Writes() (agent, holder int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agentW, f.holdW
}

// Node is this process's place on its node: the node's name, boot ID and CLOCK_MONOTONIC. It
// writes this process's records and judges the other's.
type Node struct {
	Name   string
	BootID string
	Clock  MonoClock
	PID    int
}

// SystemNode is the Node of this process on node name: the system's boot ID and clock.
func SystemNode(name string) (Node, error) {
	boot, err := SystemBootID()
	if err != nil {
		return Node{}, err
	}
	if _, err := SystemClock(); err != nil {
		return Node{}, err
	}
	return Node{Name: name, BootID: boot, Clock: SystemClock, PID: os.Getpid()}, nil
}

// AgentAlive reads the agent's record and returns it with nil when the agent is alive and not
// fenced: the record is this node's and boot's, written within 2 x its interval before now
// (node CLOCK_MONOTONIC), and not fenced. Otherwise the error says why.
func (n Node) AgentAlive(ch Channel) (AgentRecord, error) {
	r, err := ch.ReadAgent()
	if err != nil {
		return r, fmt.Errorf("the node agent's record: %w", err)
	}
	now, err := n.Clock()
	if err != nil {
		return r, err
	}
	if r.Node != n.Name {
		return r, fmt.Errorf("the node agent's record names node %q, not %q", r.Node, n.Name)
	}
	a, err := age(r.WrittenAt, now, r.BootID, n.BootID)
	switch {
	case err != nil:
		return r, fmt.Errorf("the node agent's record: %w", err)
	case a > 2*r.Interval:
		return r, fmt.Errorf("the node agent's record is %v old, more than twice its interval %v: the agent is hung or gone",
			a.Round(time.Millisecond), r.Interval)
	case r.Fenced:
		return r, errors.New("the node agent has fenced this node")
	}
	return r, nil
}

// HolderHolds reads the holder's record and returns it with nil when this node's holder holds
// the quorum disk: the record is this node's and boot's, says held, and its validity has not
// run out by now (node CLOCK_MONOTONIC). Otherwise the error says why.
func (n Node) HolderHolds(ch Channel) (HolderRecord, error) {
	r, err := ch.ReadHolder()
	if err != nil {
		return r, fmt.Errorf("the quorum holder's record: %w", err)
	}
	now, err := n.Clock()
	if err != nil {
		return r, err
	}
	if r.Node != n.Name {
		return r, fmt.Errorf("the quorum holder's record names node %q, not %q", r.Node, n.Name)
	}
	if _, err := age(r.WrittenAt, now, r.BootID, n.BootID); err != nil {
		return r, fmt.Errorf("the quorum holder's record: %w", err)
	}
	switch {
	case !r.Held:
		return r, errors.New("the quorum holder does not hold the quorum disk")
	case now >= r.ValidUntil:
		return r, fmt.Errorf("the quorum holder's disk lease (epoch %d) ran out %v ago", r.Epoch, now.Sub(r.ValidUntil))
	}
	return r, nil
}

// AgentWriter writes the node agent's record. The agent calls Write after every renewal or
// decision of its loop, and at least every Interval, from a path that no API call can block.
type AgentWriter struct {
	Channel     Channel
	Node        Node
	Incarnation uint64
	// Interval is the longest the agent goes between two writes (its renew interval).
	Interval time.Duration
}

// NewAgentWriter is the AgentWriter of node's agent (incarnation: the agent's) for cluster,
// writing under root (RootDir() when empty), every interval at least.
func NewAgentWriter(root, cluster, node string, incarnation uint64, interval time.Duration) (*AgentWriter, error) {
	if root == "" {
		root = RootDir()
	}
	d, err := OpenDir(root, cluster)
	if err != nil {
		return nil, err
	}
	n, err := SystemNode(node)
	if err != nil {
		return nil, err
	}
	if err := (AgentRecord{Node: node, BootID: n.BootID, PID: n.PID, WrittenAt: 1, Interval: interval}).Check(); err != nil {
		return nil, err
	}
	return &AgentWriter{Channel: d, Node: n, Incarnation: incarnation, Interval: interval}, nil
}

// Write writes the record: now (node CLOCK_MONOTONIC), fenced, hasQuorum.
func (w *AgentWriter) Write(fenced, hasQuorum bool) error {
	now, err := w.Node.Clock()
	if err != nil {
		return err
	}
	return w.Channel.WriteAgent(AgentRecord{Node: w.Node.Name, BootID: w.Node.BootID, PID: w.Node.PID,
		Incarnation: w.Incarnation, WrittenAt: now, Interval: w.Interval, Fenced: fenced, HasQuorum: hasQuorum})
}

// HolderReader is what the agent uses to learn whether its node's holder holds the disk.
type HolderReader struct {
	Channel Channel
	Node    Node
}

// NewHolderReader is the HolderReader of node's agent for cluster, reading under root
// (RootDir() when empty).
func NewHolderReader(root, cluster, node string) (*HolderReader, error) {
	if root == "" {
		root = RootDir()
	}
	d, err := OpenDir(root, cluster)
	if err != nil {
		return nil, err
	}
	n, err := SystemNode(node)
	if err != nil {
		return nil, err
	}
	return &HolderReader{Channel: d, Node: n}, nil
}

// Holds is Node.HolderHolds.
func (r HolderReader) Holds() (HolderRecord, error) { return r.Node.HolderHolds(r.Channel) }
