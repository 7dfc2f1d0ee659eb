package nodelocal

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const boot = "4b1d0c2e-8f5a-4e33-9c1e-2a6b7d8e9f00"

// fakeMono is a CLOCK_MONOTONIC that tests set.
type fakeMono struct{ now atomic.Int64 }

func (f *fakeMono) read() (Mono, error)  { return Mono(f.now.Load()), nil }
func (f *fakeMono) set(d time.Duration)  { f.now.Store(int64(d)) }
func (f *fakeMono) step(d time.Duration) { f.now.Add(int64(d)) }
func newMono(at time.Duration) *fakeMono { m := &fakeMono{}; m.set(at); return m }
func node(name string, m *fakeMono) Node {
	return Node{Name: name, BootID: boot, Clock: m.read, PID: 42}
}
func agentRec() AgentRecord {
	return AgentRecord{Node: "node-a", BootID: boot, PID: 7, Incarnation: 9, WrittenAt: Mono(time.Hour), Interval: time.Second}
}
func holderRec() HolderRecord {
	return HolderRecord{Node: "node-a", BootID: boot, PID: 8, WrittenAt: Mono(time.Hour), Held: true, Epoch: 3, ValidUntil: Mono(time.Hour + 5*time.Second)}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	a := agentRec()
	a.Fenced, a.HasQuorum = true, true
	b, err := MarshalAgent(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAgent(b)
	if err != nil || got != a {
		t.Fatalf("agent: %+v, %v; want %+v", got, err, a)
	}
	if _, err := ParseHolder(b); err == nil || !strings.Contains(err.Error(), `kind "agent"`) {
		t.Errorf("an agent record read as a holder's: %v", err)
	}
	h := holderRec()
	if b, err = MarshalHolder(h); err != nil {
		t.Fatal(err)
	}
	if got, err := ParseHolder(b); err != nil || got != h {
		t.Fatalf("holder: %+v, %v; want %+v", got, err, h)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	valid, _ := MarshalAgent(agentRec())
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "EOF"},
		{"not JSON", "agent\n", "invalid character"},
		{"torn", string(valid[:len(valid)/2]), "unexpected EOF"},
		{"trailing", string(valid) + "{}", "data after the record"},
		{"version", `{"version":2,"kind":"agent","agent":{}}`, "version 2, this build reads 1"},
		{"kind", `{"version":1,"kind":"holder","agent":{}}`, `kind "holder", want "agent"`},
		{"no body", `{"version":1,"kind":"agent"}`, `exactly the field "agent"`},
		{"both", `{"version":1,"kind":"agent","agent":{},"holder":{}}`, `exactly the field "agent"`},
		{"no node", `{"version":1,"kind":"agent","agent":{"bootID":"b","pid":1,"writtenAt":1,"interval":1}}`, `node ""`},
		{"no boot", `{"version":1,"kind":"agent","agent":{"node":"n","pid":1,"writtenAt":1,"interval":1}}`, `bootID ""`},
		{"no pid", `{"version":1,"kind":"agent","agent":{"node":"n","bootID":"b","writtenAt":1,"interval":1}}`, "pid 0"},
		{"no time", `{"version":1,"kind":"agent","agent":{"node":"n","bootID":"b","pid":1,"interval":1}}`, "writtenAt 0"},
		{"negative time", `{"version":1,"kind":"agent","agent":{"node":"n","bootID":"b","pid":1,"writtenAt":-5,"interval":1}}`, "writtenAt -5"},
		{"no interval", `{"version":1,"kind":"agent","agent":{"node":"n","bootID":"b","pid":1,"writtenAt":1}}`, "interval 0s"},
		{"huge interval", `{"version":1,"kind":"agent","agent":{"node":"n","bootID":"b","pid":1,"writtenAt":1,"interval":3600000000000}}`, "interval 1h0m0s"},
		{"wrong type", `{"version":1,"kind":"agent","agent":{"node":"n","bootID":"b","pid":1,"writtenAt":1,"interval":1,"fenced":"no"}}`, "cannot unmarshal"},
		{"too long", string(valid) + strings.Repeat(" ", MaxRecordSize), "more than 4096"},
	} {
		if _, err := ParseAgent([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"held at 0", `{"version":1,"kind":"holder","holder":{"node":"n","bootID":"b","pid":1,"writtenAt":1,"held":true,"validUntil":5}}`, "held at epoch 0"},
		{"held, no validity", `{"version":1,"kind":"holder","holder":{"node":"n","bootID":"b","pid":1,"writtenAt":1,"held":true,"epoch":2}}`, "no validUntil"},
		{"negative validity", `{"version":1,"kind":"holder","holder":{"node":"n","bootID":"b","pid":1,"writtenAt":1,"validUntil":-1}}`, "validUntil -1"},
	} {
		if _, err := ParseHolder([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A newer writer's extra field is ignored.
	if _, err := ParseAgent([]byte(`{"version":1,"kind":"agent","agent":{"node":"n","bootID":"b","pid":1,"writtenAt":1,"interval":1,"new":true},"also":1}`)); err != nil {
		t.Errorf("extra fields: %v", err)
	}
}

// FuzzParse: bytes from a disk never panic the parsers; what they accept is checked and encodes
// back to a record that parses the same.
func FuzzParse(f *testing.F) {
	a, _ := MarshalAgent(agentRec())
	h, _ := MarshalHolder(holderRec())
	f.Add(a)
	f.Add(h)
	f.Add([]byte(`{"version":1,"kind":"agent","agent":{"node":"n","bootID":"b","pid":1,"writtenAt":1,"interval":1}}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseAgent(b); err == nil {
			if r.Check() != nil {
				t.Fatalf("accepted an agent record that fails its check: %+v", r)
			}
			out, err := MarshalAgent(r)
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", r, err)
			}
			if r2, err := ParseAgent(out); err != nil || r2 != r {
				t.Fatalf("round trip: %+v, %v; want %+v", r2, err, r)
			}
		}
		if r, err := ParseHolder(b); err == nil {
			if r.Check() != nil {
				t.Fatalf("accepted a holder record that fails its check: %+v", r)
			}
			out, err := MarshalHolder(r)
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", r, err)
			}
			if r2, err := ParseHolder(out); err != nil || r2 != r {
				t.Fatalf("round trip: %+v, %v; want %+v", r2, err, r)
			}
		}
	})
}

func TestDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d, err := OpenDir(root, "qd-one")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d.Path())
	if err != nil || st.Mode().Perm() != 0o777 || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("directory %s: %v, %v; want sticky 0777", d.Path(), st.Mode(), err)
	}
	if _, err := d.ReadAgent(); !errors.Is(err, ErrNoRecord) {
		t.Errorf("no record yet: %v", err)
	}
	if _, err := d.ReadHolder(); !errors.Is(err, ErrNoRecord) {
		t.Errorf("no record yet: %v", err)
	}
	a := agentRec()
	for i := range 3 {
		a.WrittenAt += Mono(i)
		if err := d.WriteAgent(a); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := d.ReadAgent(); err != nil || got != a {
		t.Errorf("ReadAgent: %+v, %v", got, err)
	}
	if err := d.WriteHolder(holderRec()); err != nil {
		t.Fatal(err)
	}
	if got, err := d.ReadHolder(); err != nil || got != holderRec() {
		t.Errorf("ReadHolder: %+v, %v", got, err)
	}
	ents, _ := os.ReadDir(d.Path())
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"agent", "holder"}) {
		t.Errorf("files %v: temporary files left behind", names)
	}
	if err := os.WriteFile(filepath.Join(d.Path(), "agent"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAgent(); err == nil || !strings.Contains(err.Error(), filepath.Join(d.Path(), "agent")) {
		t.Errorf("a damaged record: %v, want an error naming the file", err)
	}
	if err := d.WriteAgent(AgentRecord{}); err == nil {
		t.Error("an invalid record was written")
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if _, err := OpenDir(root, bad); err == nil {
			t.Errorf("cluster %q accepted", bad)
		}
	}
	if _, err := OpenDir("", "qd"); err == nil {
		t.Error("no root accepted")
	}
}

func TestAgentAlive(t *testing.T) {
	t.Parallel()
	m := newMono(time.Hour)
	n := node("node-a", m)
	f := &Fake{}
	if _, err := n.AgentAlive(f); !errors.Is(err, ErrNoRecord) {
		t.Errorf("no record: %v", err)
	}
	w := &AgentWriter{Channel: f, Node: node("node-a", m), Incarnation: 5, Interval: time.Second}
	if err := w.Write(false, true); err != nil {
		t.Fatal(err)
	}
	if r, err := n.AgentAlive(f); err != nil || r.Incarnation != 5 || !r.HasQuorum || r.PID != 42 {
		t.Errorf("just written: %+v, %v", r, err)
	}
	m.step(2 * time.Second)
	if _, err := n.AgentAlive(f); err != nil {
		t.Errorf("2 x interval old: %v, want alive", err)
	}
	m.step(time.Millisecond)
	if _, err := n.AgentAlive(f); err == nil || !strings.Contains(err.Error(), "hung or gone") {
		t.Errorf("older than 2 x interval: %v", err)
	}
	if err := w.Write(true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := n.AgentAlive(f); err == nil || !strings.Contains(err.Error(), "fenced") {
		t.Errorf("fenced: %v", err)
	}
	if err := w.Write(false, false); err != nil {
		t.Fatal(err)
	}
	m.step(-time.Millisecond)
	if _, err := n.AgentAlive(f); err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("written after now: %v", err)
	}
	m.step(time.Millisecond)
	other := n
	other.BootID = "another"
	if _, err := other.AgentAlive(f); err == nil || !strings.Contains(err.Error(), "another boot") {
		t.Errorf("another boot: %v", err)
	}
	other = n
	other.Name = "node-b"
	if _, err := other.AgentAlive(f); err == nil || !strings.Contains(err.Error(), `names node "node-a", not "node-b"`) {
		t.Errorf("another node: %v", err)
	}
	f.ReadErr = errors.New("I/O error")
	if _, err := n.AgentAlive(f); err == nil || !strings.Contains(err.Error(), "I/O error") {
		t.Errorf("read error: %v", err)
	}
}

func TestHolderHolds(t *testing.T) {
	t.Parallel()
	m := newMono(time.Hour)
	n := node("node-a", m)
	f := &Fake{}
	if _, err := n.HolderHolds(f); !errors.Is(err, ErrNoRecord) {
		t.Errorf("no record: %v", err)
	}
	r := holderRec()
	if err := f.WriteHolder(r); err != nil {
		t.Fatal(err)
	}
	if got, err := n.HolderHolds(f); err != nil || got.Epoch != 3 {
		t.Errorf("held: %+v, %v", got, err)
	}
	m.set(time.Hour + 5*time.Second)
	if _, err := n.HolderHolds(f); err == nil || !strings.Contains(err.Error(), "ran out") {
		t.Errorf("after validUntil: %v", err)
	}
	r.Held, r.ValidUntil = false, 0
	if err := f.WriteHolder(r); err != nil {
		t.Fatal(err)
	}
	if _, err := n.HolderHolds(f); err == nil || !strings.Contains(err.Error(), "does not hold") {
		t.Errorf("not held: %v", err)
	}
	m.set(time.Minute)
	if _, err := n.HolderHolds(f); err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("written after now (a reboot): %v", err)
	}
}

func TestSystemNode(t *testing.T) {
	t.Parallel()
	n, err := SystemNode("node-a")
	if err != nil {
		t.Skipf("no system clock or boot ID here: %v", err)
	}
	a, _ := n.Clock()
	time.Sleep(time.Millisecond)
	b, _ := n.Clock()
	if a <= 0 || b <= a || n.BootID == "" || n.PID != os.Getpid() {
		t.Errorf("SystemNode %+v: readings %d then %d", n, a, b)
	}
	w, err := NewAgentWriter(t.TempDir(), "qd", "node-a", 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(false, true); err != nil {
		t.Fatal(err)
	}
	if _, err := n.AgentAlive(w.Channel); err != nil {
		t.Errorf("a record just written by another Node of this process: %v", err)
	}
	if _, err := NewAgentWriter(t.TempDir(), "qd", "node-a", 1, 0); err == nil {
		t.Error("interval 0 accepted")
	}
}
