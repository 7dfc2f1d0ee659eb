package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoot(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(Root(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "module github.com/wolfpack-ha/wolfpack\n"; !strings.HasPrefix(string(data), want) {
		t.Errorf("%s/go.mod does not begin with %q", Root(), want)
	}
}

func TestSamples(t *testing.T) {
	objs, err := Samples()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	for _, kind := range []string{"QuorumDisk", "ResourceGroup", "Resource"} {
		if kinds[kind] == 0 {
			t.Errorf("config/samples has no %s: %v", kind, kinds)
		}
	}
}
