package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputWide  = "wide"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

var outputFormats = []string{outputTable, outputWide, outputJSON, outputYAML}

// addOutputFlag adds -o/--output to cmd.
func addOutputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", outputTable, "Output format: "+strings.Join(outputFormats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
}

// validateOutput checks -o.
func validateOutput(output string) error {
	if !slices.Contains(outputFormats, output) {
		return fmt.Errorf("unknown output format %q: use one of %s", output, strings.Join(outputFormats, ", "))
	}
	return nil
}

// structured reports whether output asks for JSON or YAML, and prints v so if it does.
func structured(w io.Writer, output string, v any) (bool, error) {
	switch output {
	case outputJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return true, err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return true, err
	case outputYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = w.Write(b)
		return true, err
	}
	return false, nil
}

// table writes kubectl-like aligned columns.
type table struct {
	tw interface {
		io.Writer
		Flush() error
	}
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: printers.GetNewTabWriter(w)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

// row writes a row, printing empty cells as <none>.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "<none>"
		}
	}
	t.raw(cells...)
}

// raw writes a row as it is.
func (t *table) raw(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// age is how long ago t was, as kubectl's AGE column says it, or "<unknown>".
func age(now, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

// join joins names with commas, or says none.
func join(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.Join(names, ",")
}

// timePtr returns a pointer to t, or nil for the zero time, for optional JSON fields.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
