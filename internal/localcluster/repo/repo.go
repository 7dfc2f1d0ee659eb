// Package repo finds the files of this repository that the local cluster tooling and the tests
// read from the checkout: its top directory and the samples of config/samples. It works only in
// a checkout, for binaries built there without -trimpath (make demo, go test).
package repo

import (
	"path/filepath"
	"runtime"
)

// Root is the repository's top directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0) //nolint:dogsled // only the file name is needed
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}
