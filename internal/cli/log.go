package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// LogEntry is one Event of the cluster log.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Source  string    `json:"source"`
	Object  string    `json:"object"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	// Count is how often the Event was seen, when it is a series.
	Count int32 `json:"count,omitempty"`
}

// LogOutput is the cluster log, as -o json|yaml prints it.
type LogOutput struct {
	Cluster string     `json:"cluster"`
	Events  []LogEntry `json:"events"`
}

// LogOptions are the options of `log`.
type LogOptions struct {
	*Globals
	Output string
	// Since keeps only the Events of this last while; zero keeps all.
	Since time.Duration
	// Group keeps only the Events of one group and its resources.
	Group string

	namespace string
}

func newLogCommand(g *Globals) *cobra.Command {
	o := &LogOptions{Globals: g}
	cmd := &cobra.Command{
		Use:   "log [--since DURATION] [--group GROUP]",
		Short: "Print the cluster event log: the Events of the manager and every node agent, in time order",
		Long: `Print the cluster's event log, as MSCS's Event Log Manager keeps one for the whole cluster: the
Events (events.k8s.io) that the manager and every node agent wrote about the cluster's QuorumDisk
(node states, heartbeats, quorum) and about its groups and their resources in every namespace
(moves, failovers, restarts, health), merged into one timeline, oldest first.

The time of an Event is its eventTime, else its last timestamp, else when it was created; an Event
seen several times is printed once with its count. The SOURCE column is the reporting controller
and instance: which manager or which node's agent saw it.`,
		Example: `  kubectl cluster log
  kubectl cluster log --since 10m
  kubectl cluster log --group sql -n prod -o wide`,
		Aliases: []string{"events"},
		Args:    cobra.NoArgs,
		RunE:    run(o),
	}
	addOutputFlag(cmd, &o.Output)
	cmd.Flags().DurationVar(&o.Since, "since", 0, "Only Events newer than this, such as 10m or 2h (default: all)")
	cmd.Flags().StringVar(&o.Group, "group", "", "Only the Events of this group (in the namespace of -n) and its resources")
	_ = cmd.RegisterFlagCompletionFunc("group", completeGroups(g, 0))
	return cmd
}

// Complete reads the namespace, used with --group.
func (o *LogOptions) Complete(*cobra.Command, []string) error {
	ns, _, err := o.Namespace()
	o.namespace = ns
	return err
}

// Validate checks the flags.
func (o *LogOptions) Validate() error {
	if o.Since < 0 {
		return fmt.Errorf("--since must not be negative, not %s", o.Since)
	}
	return validateOutput(o.Output)
}

// Run prints the log.
func (o *LogOptions) Run(ctx context.Context) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	var qd *wolfpackv1alpha1.QuorumDisk
	if o.Group != "" {
		g, err := group(ctx, c, o.namespace, o.Group)
		if err != nil {
			return err
		}
		if qd, err = o.clusterOfGroup(ctx, c, g); err != nil {
			return err
		}
	} else if qd, err = o.cluster(ctx, c); err != nil {
		return err
	}
	entries, err := clusterLog(ctx, c, qd, o.Group, o.namespace)
	if err != nil {
		return err
	}
	if o.Since > 0 {
		from := o.Clock.Now().Add(-o.Since)
		entries = slices.DeleteFunc(entries, func(e LogEntry) bool { return e.Time.Before(from) })
	}
	out := LogOutput{Cluster: qd.Name, Events: entries}
	if done, err := structured(o.Streams.Out, o.Output, out); done {
		return err
	}
	if len(entries) == 0 {
		_, err := io.WriteString(o.Streams.Out, "No events.\n")
		return err
	}
	t := newTable(o.Streams.Out, "TIME", "TYPE", "SOURCE", "OBJECT", "REASON", "MESSAGE")
	for _, e := range entries {
		msg := e.Message
		if o.Output != outputWide {
			msg = oneLine(msg, 120)
		}
		if e.Count > 1 {
			msg += fmt.Sprintf(" (x%d)", e.Count)
		}
		t.row(e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Type, e.Source, e.Object, e.Reason, msg)
	}
	return t.flush()
}

// clusterLog lists the Events about the cluster's QuorumDisk, groups and resources, oldest first.
// With group set, only those about that group (of namespace) and its resources.
func clusterLog(ctx context.Context, c client.Client, qd *wolfpackv1alpha1.QuorumDisk, group, namespace string) ([]LogEntry, error) {
	groupNamespace := ""
	if group != "" {
		groupNamespace = namespace
	}
	groups, err := groupsOf(ctx, c, qd.Name, groupNamespace)
	if err != nil {
		return nil, err
	}
	resources, err := resourcesIn(ctx, c, groupNamespace)
	if err != nil {
		return nil, err
	}
	about := map[string]bool{}
	if group == "" {
		about["QuorumDisk//"+qd.Name] = true
	}
	for _, g := range groups {
		if group != "" && g.Name != group {
			continue
		}
		about["ResourceGroup/"+g.Namespace+"/"+g.Name] = true
		for _, r := range ofGroup(resources, g.Namespace, g.Name) {
			about["Resource/"+r.Namespace+"/"+r.Name] = true
		}
	}
	var events eventsv1.EventList
	if err := c.List(ctx, &events, client.InNamespace(groupNamespace)); err != nil {
		return nil, fmt.Errorf("listing Events: %w", err)
	}
	var out []LogEntry
	for i := range events.Items {
		if entry, ok := logEntry(&events.Items[i], about); ok {
			out = append(out, entry)
		}
	}
	slices.SortStableFunc(out, func(a, b LogEntry) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Object, b.Object), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Message, b.Message))
	})
	if out == nil {
		out = []LogEntry{}
	}
	return out, nil
}

// logEntry is the log entry of an Event about one of the objects of about (Kind/namespace/name,
// with no namespace for the QuorumDisk).
func logEntry(e *eventsv1.Event, about map[string]bool) (LogEntry, bool) {
	ref := e.Regarding
	if !strings.HasPrefix(ref.APIVersion, wolfpackv1alpha1.GroupVersion.Group+"/") {
		return LogEntry{}, false
	}
	ns := ref.Namespace
	if ref.Kind == "QuorumDisk" {
		ns = "" // cluster-scoped: its Events are recorded in namespace default
	}
	if !about[ref.Kind+"/"+ns+"/"+ref.Name] {
		return LogEntry{}, false
	}
	object := ref.Kind + "/" + ref.Name
	if ns != "" {
		object = ref.Kind + "/" + ns + "/" + ref.Name
	}
	source := or(e.ReportingController, e.DeprecatedSource.Component)
	if e.ReportingInstance != "" && e.ReportingInstance != source {
		source += "/" + e.ReportingInstance
	}
	entry := LogEntry{Time: eventTime(e), Type: e.Type, Source: source, Object: object, Reason: e.Reason, Message: e.Note}
	if e.Series != nil {
		entry.Count = e.Series.Count
	} else if e.DeprecatedCount > 1 {
		entry.Count = e.DeprecatedCount
	}
	return entry, true
}

// eventTime is when an Event last happened: its series' last observation, its eventTime, its
// deprecated last timestamp, or when it was created.
func eventTime(e *eventsv1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.DeprecatedLastTimestamp.IsZero():
		return e.DeprecatedLastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return s
}
