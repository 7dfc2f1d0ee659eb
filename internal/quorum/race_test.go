//go:build race

package quorum

// raceEnabled: the race detector slows the simulation down about tenfold.
const raceEnabled = true
