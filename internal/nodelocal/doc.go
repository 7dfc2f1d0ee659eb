// Package nodelocal is the channel between the node agent and the quorum holder that run on the
// same node: each writes a small record into a per-cluster directory that both see (a hostPath
// such as /run/wolfpack/<cluster>/), and reads the other's.
//
// # Why
//
// The quorum holder is a separate process. It must defend the quorum disk only while its node's
// agent is alive and not fenced (RULES.md section 6, issue 13 schedule 10): an agent that hangs
// (SIGSTOP, CPU starvation, an OOM loop) on the quorum owner must let the disk go, so that the
// survivor can take it once the hung node's watchdog has reset it. Conversely the agent may use
// "my node's holder holds the disk" as local evidence. Both facts are local to the node and must
// not depend on the API server, so they travel through files on the node.
//
// # Clock
//
// Every time in a record is a reading of the node's CLOCK_MONOTONIC ([Mono], "node
// CLOCK_MONOTONIC" in RULES.md section 7): one clock that every process on the node shares, that
// wall-clock steps do not move. A reader judges a record's age against its own reading of the
// same clock, never against wall time. CLOCK_MONOTONIC restarts at boot, so every record carries
// the node's boot ID, and a record of another boot (a directory that survived a reboot), or one
// written "in the future", is never fresh.
//
// # Files
//
// [Dir] keeps the records as the files "agent" and "holder" in <root>/<cluster>/. A write goes to
// a temporary file in the same directory and is renamed over the record, so that a reader sees
// the old record or the new one, never a torn one. The directory is made with mode 01777 (sticky,
// like /tmp) when this process may set it, because the agent runs as root and the holder as an
// unprivileged user; the sticky bit keeps each process from replacing the other's record.
// Records are JSON, at most [MaxRecordSize] bytes, version [Version]; [ParseAgent] and
// [ParseHolder] check every field (they are fuzzed: the bytes come from a disk).
package nodelocal
